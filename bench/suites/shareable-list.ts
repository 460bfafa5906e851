/**
 * shareable-list: reading every item of a frozen 100,000-item ShareableList in a process that
 * did not create it, against reading the same items from a plain JS array in that process; and
 * ShareableList.open against one request round trip to the daemon.
 *
 * A list decodes items as they are read and keeps those of pages it reads a second time (a
 * frozen list never changes), so the suite times both: passes that decode every item from shared
 * memory (a new list object over the same blob each pass), and later passes over one list (from
 * its cache). The first
 * open and pass in a fresh process, which also pay for mapping, first touch and a cold JIT, are
 * set against the alternative to sharing: copying the items in (v8.deserialize), also cold.
 *
 * Placement as in core: the daemon on one CPU, the writer and readers on the other.
 */
import * as os from 'node:os';
import type { FirstReadResult, ShareableListCommands } from '../children/shareable-list-client';
import { withChild, type BenchChild } from '../lib/child';
import { crossCorePlacement, describePlacement } from '../lib/cpu';
import { startBenchDaemon } from '../lib/daemon';
import type { SampleSet } from '../lib/sampler';
import type { Suite, SuiteContext } from '../lib/suite';
import { runListAb } from './shareable-list/ab';
import { LIST_PLAN, listReport, type ListMeasurements, type ListPlan } from './shareable-list/report';

type Commands = ShareableListCommands;
type Result<K extends keyof Commands> = Awaited<ReturnType<Commands[K]>>;

async function measureList({ scope, log }: SuiteContext, plan: ListPlan): Promise<ListMeasurements> {
  const loadBefore = os.loadavg()[0];
  const placement = crossCorePlacement();
  const cpu = placement?.clientCpu;
  const daemon = await startBenchDaemon(scope, { size: plan.daemonSize, cpu: placement?.serverCpu });
  log(`trellisd pid ${daemon.pid} (--size ${plan.daemonSize}); ${describePlacement(placement)}`);
  const script = 'shareable-list-client.ts';
  const args = [daemon.socket];

  log(`creating and freezing a list of ${plan.items} items: writer process`);
  const created = await withChild<Commands, Result<'create'>>(scope, script, args, { cpu }, (writer) =>
    writer.call('create', { count: plan.items }),
  );
  // Cold sides, each a fresh process a sample, in rounds; the order turns each round so that load
  // that comes and goes hits every side alike. The first round's reader also runs the warm passes.
  const firsts: FirstReadResult[] = [];
  const sameState: FirstReadResult[] = [];
  const copied: SampleSet[] = [];
  const coldArray: SampleSet[] = [];
  const floor: SampleSet[] = [];
  let read: Result<'read'> | undefined;
  const sides = {
    list: async () => {
      const reading = (reader: BenchChild<Commands>) =>
        read
          ? reader.call('firstRead', { name: created.name })
          : reader.call('read', { name: created.name, count: plan.items, ...plan.passes });
      const result = await withChild<Commands, FirstReadResult>(scope, script, args, { cpu }, reading);
      read ??= result as Result<'read'>;
      firsts.push(result);
    },
    // The list read by a process in the array side's state: it makes (and keeps) the items first.
    listSameState: async () => {
      const result = await withChild<Commands, FirstReadResult>(scope, script, args, { cpu }, (reader) =>
        reader.call('firstRead', { name: created.name, sameStateAsArray: plan.items }),
      );
      sameState.push(result);
    },
    copy: async () => {
      const result = await withChild<Commands, Result<'copyFirst'>>(scope, script, args, { cpu }, (copier) =>
        copier.call('copyFirst', { count: plan.items }),
      );
      copied.push(result.firstDeserializeAndRead);
    },
    array: async () => {
      const result = await withChild<Commands, Result<'arrayFirst'>>(scope, script, args, { cpu }, (child) =>
        child.call('arrayFirst', { count: plan.items }),
      );
      coldArray.push(result.firstArrayPass);
    },
    // What JS can do at best: the list's blob decoded by one hand-written loop (shareable-list-floor.ts).
    floor: async () => {
      const result = await withChild<Commands, Result<'floorFirst'>>(scope, script, args, { cpu }, (child) =>
        child.call('floorFirst', { name: created.name }),
      );
      floor.push(result.firstFloorPass);
    },
  };
  const order = Object.values(sides);
  for (let round = 0; round < plan.coldRounds; round++) {
    log(
      `cold round ${round + 1} of ${plan.coldRounds}: a fresh process each for the list's first open and pass ` +
        '(twice: as is, and after making the items), copying the items in (v8.deserialize), a plain JS array ' +
        'and the JS floor (the blob decoded by a hand-written loop)',
    );
    for (let i = 0; i < order.length; i++) await order[(round + i) % order.length]();
  }
  log('ShareableList.open against a round trip: fresh process');
  const opened = await withChild<Commands, Result<'open'>>(scope, script, args, { cpu }, (opener) =>
    opener.call('open', { name: created.name, ...plan.opens }),
  );
  await daemon.stop();
  return {
    placement,
    listBytes: created.bytes,
    read: read!,
    firsts,
    sameState,
    copied,
    coldArray,
    floor,
    opened,
    loadAverage: { before: loadBefore, after: os.loadavg()[0] },
  };
}

export const suite: Suite = {
  name: 'shareable-list',
  title:
    'reading a frozen 100,000-item ShareableList in another process against a plain JS array; open against a round trip',
  async run(context) {
    return listReport(LIST_PLAN, await measureList(context, LIST_PLAN));
  },
  runAb: runListAb,
};
