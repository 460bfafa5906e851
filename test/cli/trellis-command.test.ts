/**
 * The `trellis` command line in a child process against a real daemon: listings (human and
 * --json), persist and rm, the error line and exit codes (0, 1 for a TrellisError, 2 for bad
 * usage with a usage line).
 */
import * as assert from 'node:assert/strict';
import { connect, type TrellisClient } from '../../src/connect';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { tempPath } from '../fixtures/setup';
import { runTrellis, trellisOk } from '../fixtures/trellis-cli';

/** What every TrellisError looks like on stderr: exactly one line. */
const ERROR_LINE = /^trellis: ([A-Za-z]+): [^\n]+\n$/;

describe('trellis command line', () => {
  let daemon: TestDaemon;
  let client: TrellisClient;

  before(async () => {
    daemon = await startTestDaemon();
    client = await connect(daemon.socket);
  });

  after(async () => {
    await client?.close();
    await daemon?.stop();
  });

  describe('status and instances', () => {
    it('status prints the memory and objects, and --json the status with the cluster', async () => {
      const human = await trellisOk(daemon.socket, ['status']);
      assert.match(human.text, /^memory\s+\S+ \S+ used of 256 MiB/m);
      assert.match(human.text, /^objects\s+\d+ \(\d+ names, \d+ streams\)$/m);
      assert.match(human.text, /^cluster\s+none \(no --etcd\)$/m);
      const json = JSON.parse((await trellisOk(daemon.socket, ['status', '--json'])).text);
      assert.equal(json.instanceId, daemon.instanceId);
      assert.equal(json.memoryLimit, 256 * 1024 * 1024);
      assert.equal(typeof json.memoryUsage, 'number');
      assert.deepEqual(Object.keys(json.spilled).sort(), ['bytes', 'objects']);
      assert.equal(json.cluster.clustered, false);
      assert.equal(json.cluster.instances.length, 1);
    });

    it('instances lists this daemon alive, as a table and as JSON', async () => {
      const human = await trellisOk(daemon.socket, ['instances']);
      const [header, row] = human.text.trimEnd().split('\n');
      assert.match(header, /INSTANCE\s+HOST\s+SOCKET\s+RPC\s+STATE/);
      assert.match(row, new RegExp(`${daemon.instanceId}\\*.*${daemon.socket.replace(/[.]/g, '\\.')}\\s+-\\s+alive$`));
      const json = JSON.parse((await trellisOk(daemon.socket, ['instances', '--json'])).text);
      assert.deepEqual(
        json.instances.map((i: { instanceId: number; alive: boolean }) => [i.instanceId, i.alive]),
        [[daemon.instanceId, true]],
      );
    });
  });

  describe('ls and names', () => {
    let labelled: string;
    let plain: string;

    before(async () => {
      labelled = await client.put(
        { kind: 'labelled' },
        { name: 'cli/ls-labelled', labels: { team: 'blue', stage: 'raw' } },
      );
      plain = await client.put([1, 2, 3], { labels: { team: 'red' } });
    });

    it('ls --json lists objects with names and labels', async () => {
      const objects = JSON.parse((await trellisOk(daemon.socket, ['ls', '--json'])).text);
      const found = objects.find((object: { id: string }) => object.id === labelled);
      assert.deepEqual(Object.keys(found).sort(), [
        'createdAt',
        'id',
        'labels',
        'names',
        'nbytes',
        'sealed',
        'typename',
      ]);
      assert.equal(found.typename, 'trellis::Value');
      assert.deepEqual(found.names, ['cli/ls-labelled']);
      assert.deepEqual(found.labels, { team: 'blue', stage: 'raw' });
      assert.ok(objects.some((object: { id: string }) => object.id === plain));
    });

    it('ls --label keeps only objects with every given label', async () => {
      const ids = (args: string[]) =>
        trellisOk(daemon.socket, ['ls', '--json', ...args]).then((run) =>
          JSON.parse(run.text).map((o: { id: string }) => o.id),
        );
      assert.deepEqual(await ids(['--label', 'team=blue']), [labelled]);
      assert.deepEqual(await ids(['--label', 'team=blue', '--label', 'stage=cooked']), []);
      assert.deepEqual(await ids(['--label', 'team=red']), [plain]);
    });

    it('ls prints an aligned table, and PATTERN is a glob over the typename', async () => {
      const run = await trellisOk(daemon.socket, ['ls', 'trellis::Value']);
      const lines = run.text.trimEnd().split('\n');
      assert.match(lines[0], /^ID\s+TYPE\s+SIZE\s+AGE\s+NAMES\s+LABELS$/);
      const row = lines.find((line) => line.startsWith(labelled));
      assert.ok(row, run.text);
      assert.match(row!, /trellis::Value\s+\d+ B\s+\d+[smhd]\s+cli\/ls-labelled\s+team=blue,stage=raw$/);
      assert.equal(lines[0].indexOf('TYPE'), row!.indexOf('trellis::Value'));
      const none = await trellisOk(daemon.socket, ['ls', 'trellis::Nothing*', '--json']);
      assert.deepEqual(JSON.parse(none.text), []);
    });

    it('names lists names with their ids; PATTERN filters; --json gives {name, id}', async () => {
      await client.put('other', { name: 'cli/names-other' });
      const json = JSON.parse((await trellisOk(daemon.socket, ['names', 'cli/ls-*', '--json'])).text);
      assert.deepEqual(json, [{ name: 'cli/ls-labelled', id: labelled }]);
      const human = await trellisOk(daemon.socket, ['names', 'cli/*']);
      assert.match(human.text, /^NAME\s+ID\n/);
      assert.match(human.text, new RegExp(`^cli/ls-labelled\\s+${labelled}$`, 'm'));
      assert.match(human.text, /^cli\/names-other\s+o[0-9a-f]+$/m);
    });
  });

  describe('persist and rm', () => {
    it('persist with --ttl succeeds silently; rm deletes', async () => {
      const id = await client.put({ doomed: true });
      const persisted = await trellisOk(daemon.socket, ['persist', id, '--ttl', '600']);
      assert.equal(persisted.text, '');
      await trellisOk(daemon.socket, ['rm', id]);
      assert.equal(await client.exists(id), false);
    });

    it('rm of a named object is a Conflict unless --force; several ids go at once', async () => {
      const named = await client.put({ named: true }, { name: 'cli/rm-named' });
      const other = await client.put({ other: true });
      const refused = await runTrellis(['rm', named, other, '--socket', daemon.socket]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, ERROR_LINE);
      assert.match(refused.stderr, /^trellis: Conflict: .*cli\/rm-named/);
      await trellisOk(daemon.socket, ['rm', '--force', named, other]);
      assert.equal(await client.exists(named), false);
      assert.equal(await client.exists(other), false);
    });
  });

  describe('errors and exit codes', () => {
    it('an unknown id exits 1 with one line "trellis: ObjectNotFound: ..." and prints nothing else', async () => {
      const run = await runTrellis(['get', 'o00000000000000ff', '--socket', daemon.socket]);
      assert.equal(run.code, 1);
      assert.equal(run.text, '');
      assert.match(run.stderr, ERROR_LINE);
      assert.equal(run.stderr, 'trellis: ObjectNotFound: object o00000000000000ff does not exist\n');
    });

    it('an unknown name is NameNotFound; persist of an unknown id is ObjectNotFound', async () => {
      const name = await runTrellis(['get', 'cli/no-such-name', '--socket', daemon.socket]);
      assert.equal(name.code, 1);
      assert.match(name.stderr, /^trellis: NameNotFound: .*cli\/no-such-name.*\n$/);
      const persist = await runTrellis(['persist', 'o00000000000000fe', '--socket', daemon.socket]);
      assert.equal(persist.code, 1);
      assert.match(persist.stderr, /^trellis: ObjectNotFound: .*o00000000000000fe.*\n$/);
    });

    it('no daemon at --socket exits 1 with the socket named; --debug adds the stack', async () => {
      const socket = tempPath('nobody.sock');
      const run = await runTrellis(['status', '--socket', socket]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, ERROR_LINE);
      assert.ok(run.stderr.includes(socket), run.stderr);
      const debug = await runTrellis(['status', '--socket', socket, '--debug']);
      assert.equal(debug.code, 1);
      assert.match(debug.stderr, /^trellis: [A-Za-z]+: .*\n\S*Error: [^\n]*\n\s+at /);
    });

    it('a missing file is an IOError naming it', async () => {
      const file = tempPath('missing.bin');
      const run = await runTrellis(['put', file, '--socket', daemon.socket]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, ERROR_LINE);
      assert.ok(run.stderr.startsWith('trellis: IOError: ') && run.stderr.includes(file), run.stderr);
    });

    const usageCases: Array<[string, string[], RegExp]> = [
      ['a missing argument', ['put'], /^usage: trellis put \[options\] <file>$/m],
      ['an unknown option', ['ls', '--bogus'], /^usage: trellis ls \[options\] \[pattern\]$/m],
      ['an unknown command', ['frobnicate'], /^usage: trellis \[options\] \[command\]$/m],
      ['a format not in the list', ['get', 'x', '--format', 'xml'], /^usage: trellis get \[options\] <ref>$/m],
      ['a ttl that is not a positive number', ['persist', 'x', '--ttl', '-1'], /^usage: trellis persist/m],
      ['a label without =', ['ls', '--label', 'team'], /^usage: trellis ls/m],
      ['no command at all', [], /^Usage: trellis \[options\] \[command\]$/m],
    ];
    for (const [what, args, usage] of usageCases) {
      it(`bad usage (${what}) exits 2 with a usage line`, async () => {
        const run = await runTrellis(args);
        assert.equal(run.code, 2, run.stderr);
        assert.match(run.stderr, usage);
        assert.equal(run.text, '');
      });
    }

    it('--help prints the usage on stdout and exits 0', async () => {
      const run = await runTrellis(['get', '--help']);
      assert.equal(run.code, 0);
      assert.match(run.text, /^Usage: trellis get \[options\] <ref>$/m);
      assert.match(run.text, /--socket <path>/);
      assert.match(run.text, /--format <format>/);
    });
  });

  it("versions lists a name's versions, newest first (--json), and an unknown name exits 1", async () => {
    const first = await client.put('v1');
    const second = await client.put('v2');
    await client.putName(first, 'cli/versioned');
    await client.putName(second, 'cli/versioned', { override: true });
    const run = await trellisOk(daemon.socket, ['versions', 'cli/versioned', '--json']);
    const listed = JSON.parse(run.text) as Array<{ version: number; id: string }>;
    const expected = [
      { version: 2, id: second },
      { version: 1, id: first },
    ];
    assert.deepEqual(
      listed.map(({ version, id }) => ({ version, id })),
      expected,
    );
    const table = await trellisOk(daemon.socket, ['versions', 'cli/versioned']);
    assert.match(table.text, new RegExp(`^\\s*2\\s+${second}\\s`, 'm'));
    const missing = await runTrellis(['versions', 'cli/nothing', '--socket', daemon.socket]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /NameNotFound/);
  });

  describe('lineage', () => {
    it('lists an object and its parents, breadth first, as JSON and as a table', async () => {
      const parent = await client.put({ step: 'raw' }, { name: 'cli/lineage-raw' });
      const child = await client.put({ step: 'cooked' }, { parents: ['cli/lineage-raw'] });
      const json = JSON.parse((await trellisOk(daemon.socket, ['lineage', child, '--json'])).text);
      assert.deepEqual(json, [
        { depth: 0, id: child, typename: 'trellis::Value', missing: false },
        { depth: 1, id: parent, typename: 'trellis::Value', name: 'cli/lineage-raw', version: 1, missing: false },
      ]);
      const table = await trellisOk(daemon.socket, ['lineage', child]);
      assert.match(table.text, new RegExp(`^\\s*1\\s+${parent}\\s+trellis::Value\\s+cli/lineage-raw`, 'm'));
    });
  });
});
