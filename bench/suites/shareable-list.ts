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
import type { ShareableListCommands } from '../children/shareable-list-client';
import { withChild } from '../lib/child';
import { crossCorePlacement, describePlacement } from '../lib/cpu';
import { startBenchDaemon } from '../lib/daemon';
import type { Suite, SuiteContext } from '../lib/suite';
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
  log('reading it: fresh reader process');
  const read = await withChild<Commands, Result<'read'>>(scope, script, args, { cpu }, (reader) =>
    reader.call('read', { name: created.name, count: plan.items, ...plan.passes }),
  );
  log('copying the items into a fresh process instead (v8.deserialize)');
  const copied = await withChild<Commands, Result<'copyFirst'>>(scope, script, args, { cpu }, (copier) =>
    copier.call('copyFirst', { count: plan.items }),
  );
  log('the first pass over a plain JS array of the items: fresh process');
  const arrayFirst = await withChild<Commands, Result<'arrayFirst'>>(scope, script, args, { cpu }, (child) =>
    child.call('arrayFirst', { count: plan.items }),
  );
  log('ShareableList.open against a round trip: fresh process');
  const opened = await withChild<Commands, Result<'open'>>(scope, script, args, { cpu }, (opener) =>
    opener.call('open', { name: created.name, ...plan.opens }),
  );
  await daemon.stop();
  return {
    placement,
    listBytes: created.bytes,
    read,
    copied,
    coldArray: arrayFirst.firstArrayPass,
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
};
