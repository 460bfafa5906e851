/**
 * Baseline: a bare UNIX-socket round trip between two Node processes with the net module, no
 * framing: one process echoes whatever arrives, the other writes a small message and waits for
 * all of it to come back. Every trellis request costs at least this.
 */
import * as net from 'node:net';
import { connectEcho } from '../lib/echo-client';
import { sample, type SampleSet } from '../lib/sampler';
import { serveCommands } from '../lib/serve-commands';

export interface PingPongArgs {
  socket: string;
  messageBytes: number;
  iterations: number;
  warmup: number;
}

let server: net.Server | undefined;

const commands = {
  /** Starts echoing on `socket`; resolves once it listens. */
  listen({ socket }: { socket: string }): Promise<void> {
    server = net.createServer((connection) => connection.on('data', (chunk) => connection.write(chunk)));
    return new Promise((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(socket, () => resolve());
    });
  },

  async pingPong({ socket, messageBytes, iterations, warmup }: PingPongArgs): Promise<SampleSet> {
    const echo = await connectEcho(socket, messageBytes);
    try {
      return await sample(echo.roundTrip, { iterations, warmup });
    } finally {
      echo.close();
    }
  },
};

export type SocketEchoCommands = typeof commands;

if (require.main === module) serveCommands(commands);
