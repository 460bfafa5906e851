/**
 * The client side of the raw echo baseline: writes `bytes` to a plain Node echo server
 * (children/socket-echo.ts) over a UNIX socket and waits for all of them to come back, with the
 * net module and no framing. What any request/response over the socket costs at least.
 */
import * as net from 'node:net';

export interface EchoClient {
  /** One round trip. */
  roundTrip(): Promise<void>;
  close(): void;
}

export async function connectEcho(socketPath: string, bytes: number): Promise<EchoClient> {
  const connection = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(socketPath, () => resolve(s));
    s.once('error', reject);
  });
  const message = Buffer.alloc(bytes, 0x42);
  let outstanding = 0;
  let wake: (() => void) | undefined;
  connection.on('data', (chunk: Buffer) => {
    outstanding -= chunk.length;
    if (outstanding <= 0 && wake) {
      const done = wake;
      wake = undefined;
      done();
    }
  });
  return {
    roundTrip: () =>
      new Promise<void>((resolve) => {
        outstanding = bytes;
        wake = resolve;
        connection.write(message);
      }),
    close: () => connection.destroy(),
  };
}
