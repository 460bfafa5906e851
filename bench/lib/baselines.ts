/**
 * Baseline drivers any suite can run in the same run as its own workload: a bare socket round
 * trip between two processes, and memcpy between two JS buffers. Ratios to these, rather than
 * absolute times, are what stay comparable across noisy runs and machines.
 */
import type { MemcpyCommands } from '../children/memcpy';
import type { SocketEchoCommands } from '../children/socket-echo';
import { withChild } from './child';
import type { Placement } from './cpu';
import type { SampleSet } from './sampler';
import type { Scope } from './scope';

export interface RoundTripOptions {
  messageBytes: number;
  iterations: number;
  warmup: number;
}

/** One process echoes, a second one times write-then-read-it-all-back, placed like a daemon and its client. */
export async function measureSocketRoundTrip(
  scope: Scope,
  options: RoundTripOptions,
  placement?: Placement,
): Promise<SampleSet> {
  const socket = scope.path('echo.sock');
  return withChild<SocketEchoCommands, SampleSet>(
    scope,
    'socket-echo.ts',
    ['server'],
    { cpu: placement?.serverCpu },
    async (server) => {
      await server.call('listen', { socket });
      return withChild<SocketEchoCommands, SampleSet>(
        scope,
        'socket-echo.ts',
        ['client'],
        { cpu: placement?.clientCpu },
        (client) => client.call('pingPong', { socket, ...options }),
      );
    },
  );
}

export interface MemcpyPlan {
  bytes: number;
  iterations: number;
  /** Copies timed together: a 1 KiB copy is too short to time alone. */
  opsPerSample: number;
}

/** Every size in one child (on `cpu`), largest buffers freed before the next size allocates. */
export async function measureMemcpy(
  scope: Scope,
  plans: readonly MemcpyPlan[],
  cpu?: number,
): Promise<Map<number, SampleSet>> {
  return withChild<MemcpyCommands, Map<number, SampleSet>>(scope, 'memcpy.ts', [], { cpu }, async (child) => {
    const results = new Map<number, SampleSet>();
    for (const plan of plans) {
      const warmup = Math.max(1, Math.round(plan.iterations / 10));
      results.set(plan.bytes, await child.call('memcpy', { ...plan, warmup }));
    }
    return results;
  });
}
