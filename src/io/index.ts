/**
 * trellis/io: open URLs as DataframeStreams (reading) or write streams and tables out.
 *
 *   const stream = await open('file:///data/edges.e');
 *   for await (const batch of stream) { ... }      // or: await stream.readTable()
 *   await open('file:///out.csv', { mode: 'w', source: table });
 */
import { driverFor, registerDriver, type Driver } from './drivers';
import { fileDriver, type FileOpenOptions } from './file-driver';

registerDriver('file', fileDriver);

/** Errors: InvalidArgument (bad URL, unknown scheme), IOError, ParseError. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function open(url: string, options: FileOpenOptions & Record<string, unknown> = {}): Promise<any> {
  const { driver, parsed } = driverFor(url);
  return driver.open(parsed, options);
}

export { registerDriver, type Driver, type FileOpenOptions };
export { DataframeStream } from './dataframe-stream';
