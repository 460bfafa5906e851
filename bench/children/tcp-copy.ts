/**
 * Baseline: the plain TCP copy that migrate is measured against. One process sends `bytes` from
 * a ready buffer over a loopback socket with the net module, in large writes; the other copies
 * what arrives into a ready buffer of the same size (as migrate copies into shared memory) and
 * answers one byte when it has everything. No framing, no protocol: the floor for any copy
 * between two Node processes over TCP.
 */
import * as net from 'node:net';
import { sample, type SampleSet } from '../lib/sampler';
import { serveCommands } from '../lib/serve-commands';

export interface SendArgs {
  port: number;
  bytes: number;
  iterations: number;
  warmup: number;
}

/** The size of each write; migrate's readBlobs chunks are as large. */
const WRITE_BYTES = 16 * 1024 * 1024;

let server: net.Server | undefined;

const commands = {
  /** Receiver: listens on a loopback port and returns it. */
  listen({ bytes }: { bytes: number }): Promise<number> {
    const target = Buffer.alloc(bytes);
    server = net.createServer((connection) => {
      let received = 0;
      connection.on('data', (chunk: Buffer) => {
        chunk.copy(target, received % bytes);
        received += chunk.length;
        if (received % bytes === 0) connection.write('k');
      });
    });
    return new Promise((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(0, '127.0.0.1', () => resolve((server!.address() as net.AddressInfo).port));
    });
  },

  /** Sender: times sending `bytes` until the receiver says it has them all. */
  async send({ port, bytes, iterations, warmup }: SendArgs): Promise<SampleSet> {
    const source = Buffer.alloc(bytes, 0x5a);
    const connection = await new Promise<net.Socket>((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1', noDelay: true }, () => resolve(socket));
      socket.once('error', reject);
    });
    let acknowledged: (() => void) | undefined;
    connection.on('data', () => acknowledged?.());
    const copy = () =>
      new Promise<void>((resolve) => {
        acknowledged = resolve;
        let at = 0;
        const pump = (): void => {
          while (at < bytes) {
            const end = Math.min(at + WRITE_BYTES, bytes);
            const more = connection.write(source.subarray(at, end));
            at = end;
            if (!more) {
              connection.once('drain', pump);
              return;
            }
          }
        };
        pump();
      });
    try {
      return await sample(copy, { iterations, warmup });
    } finally {
      connection.destroy();
    }
  },
};

export type TcpCopyCommands = typeof commands;

if (require.main === module) serveCommands(commands);
