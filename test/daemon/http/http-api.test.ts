import * as assert from 'node:assert/strict';
import WebSocket from 'ws';
import { connect } from '../../../src/index';
import { uniquePrefix, waitFor } from '../../fixtures/cluster';
import { startTestDaemon, type TestDaemon } from '../../fixtures/daemon';
import { startEtcd } from '../../fixtures/etcd';
import { onCleanup } from '../../fixtures/setup';

async function get(daemon: TestDaemon, path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`http://${daemon.httpEndpoint}${path}`, { headers });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function json(daemon: TestDaemon, path: string): Promise<any> {
  return (await get(daemon, path)).json();
}

/** The value of one sample line (`name{labels} value`) in Prometheus text, or undefined. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

describe('the daemon HTTP port (--http-port)', function () {
  this.timeout(30_000);

  describe('without a token', () => {
    let daemon: TestDaemon;
    before(async () => {
      daemon = await startTestDaemon(['--http-port', '0']);
    });
    after(() => daemon.stop());

    it('adds http=HOST:PORT to the ready line, on loopback by default', () => {
      assert.match(daemon.output(), /^trellisd ready socket=\S+ instance=0 http=127\.0\.0\.1:\d+$/m);
    });

    it('serves Prometheus metrics that move after a put', async () => {
      const before = await (await get(daemon, '/metrics')).text();
      for (const name of [
        'trellis_memory_used_bytes',
        'trellis_memory_limit_bytes',
        'trellis_objects',
        'trellis_clients',
        'trellis_spilled_bytes',
        'trellis_persisted_objects',
        'trellis_cluster_instances_alive',
        'trellis_spare_segment_bytes{state="ready"}',
        'process_cpu_user_seconds_total',
      ]) {
        assert.ok(sample(before, name) !== undefined, `${name} missing from:\n${before}`);
      }
      assert.equal(sample(before, 'trellis_memory_limit_bytes'), 256 * 1024 * 1024);
      assert.equal(sample(before, 'trellis_cluster_instances_alive'), 1);
      const client = await connect(daemon.socket);
      onCleanup(() => client.close());
      await client.put(new Uint8Array(100_000), { name: 'metrics-probe' });
      const response = await get(daemon, '/metrics');
      assert.match(response.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
      const after = await response.text();
      assert.ok(sample(after, 'trellis_objects')! > sample(before, 'trellis_objects')!);
      assert.ok(sample(after, 'trellis_memory_used_bytes')! >= 100_000);
      assert.equal(sample(after, 'trellis_clients'), 1);
      assert.ok(sample(after, 'trellis_requests_total{kind="createBlobs"}')! >= 1, after);
      assert.ok(sample(after, 'trellis_request_duration_seconds_count{kind="createBlobs"}')! >= 1, after);
      assert.ok(sample(after, 'trellis_request_duration_seconds_bucket{kind="createBlobs",le="+Inf"}')! >= 1, after);
      assert.match(after, /^# TYPE trellis_request_duration_seconds histogram$/m);
    });

    it('answers /api/status, /api/objects, /api/names and /api/instances as JSON', async () => {
      const client = await connect(daemon.socket);
      onCleanup(() => client.close());
      const id = await client.put({ text: 'api' }, { name: 'api-probe' });
      const status = await json(daemon, '/api/status');
      assert.equal(status.instanceId, 0);
      assert.equal(typeof status.memoryUsage, 'number');
      assert.deepEqual(Object.keys(status.spilled).sort(), ['bytes', 'objects']);

      const objects = await json(daemon, '/api/objects?limit=1000');
      assert.equal(objects.offset, 0);
      assert.equal(objects.limit, 1000);
      const row = objects.objects.find((object: { id: string }) => object.id === id);
      assert.ok(row, JSON.stringify(objects));
      assert.deepEqual(row.names, ['api-probe']);
      assert.deepEqual(Object.keys(row).sort(), ['createdAt', 'id', 'labels', 'names', 'nbytes', 'typename']);
      assert.ok(objects.total >= 1);
      const paged = await json(daemon, '/api/objects?offset=0&limit=1');
      assert.equal(paged.objects.length, 1);

      const names = await json(daemon, '/api/names?pattern=api-*');
      assert.deepEqual(names, { total: 1, offset: 0, limit: 100, names: [{ name: 'api-probe', id }] });

      const instances = await json(daemon, '/api/instances');
      assert.equal(instances.clustered, false);
      assert.equal(instances.instances.length, 1);
      assert.equal(instances.instances[0].alive, true);
    });

    it('lists a blob sealed through the put ring at once, though its seal was no request', async () => {
      const client = await connect(daemon.socket);
      onCleanup(() => client.close());
      const writer = await client.createBlob(8);
      writer.buffer.fill(5);
      const listed = (body: { objects: Array<{ id: string }> }) => body.objects.some((row) => row.id === writer.id);
      assert.equal(listed(await json(daemon, '/api/objects?limit=1000')), false, 'not listed while unsealed');
      await writer.seal();
      assert.equal(listed(await json(daemon, '/api/objects?limit=1000')), true, 'listed once sealed');
    });

    it('answers 404 for unknown paths and 405 for other methods than GET', async () => {
      for (const path of ['/nope', '/api/nope', '/dashboard/missing.js', '/live/x']) {
        assert.equal((await get(daemon, path)).status, 404, path);
      }
      assert.equal((await fetch(`http://${daemon.httpEndpoint}/api/status`, { method: 'POST' })).status, 405);
    });

    it('serves the dashboard page and its files', async () => {
      const page = await get(daemon, '/');
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type')!, /^text\/html/);
      assert.match(await page.text(), /<title>trellisd<\/title>/);
      for (const path of [
        '/dashboard/app.js',
        '/dashboard/style.css',
        '/vendor/uPlot.iife.min.js',
        '/vendor/uPlot.min.css',
      ]) {
        assert.equal((await get(daemon, path)).status, 200, path);
      }
    });

    it('sends snapshots over /live, and the page asked for', async () => {
      const ws = new WebSocket(`ws://${daemon.httpEndpoint}/live`);
      onCleanup(() => ws.terminate());
      const messages: Array<Record<string, unknown>> = [];
      const waiters: Array<() => void> = [];
      ws.on('message', (data) => {
        messages.push(JSON.parse(data.toString()));
        waiters.splice(0).forEach((wake) => wake());
      });
      const next = async (type: string, test: (m: Record<string, unknown>) => boolean = () => true) => {
        for (;;) {
          const found = messages.findIndex((m) => m.type === type && test(m));
          if (found >= 0) return messages.splice(0, found + 1)[found];
          await new Promise<void>((resolve) => waiters.push(resolve));
        }
      };
      const history = await next('history');
      assert.ok(Array.isArray(history.samples) && history.samples.length >= 1);
      const first = await next('snapshot');
      assert.deepEqual(Object.keys(first).sort(), [
        'at',
        'cluster',
        'errors',
        'names',
        'objects',
        'sample',
        'status',
        'streams',
        'type',
      ]);
      ws.send(JSON.stringify({ objects: { offset: 0, limit: 1 } }));
      type ObjectsPage = { limit: number; objects: unknown[] };
      const paged = await next('snapshot', (m) => (m.objects as ObjectsPage).limit === 1);
      assert.ok((paged.objects as ObjectsPage).objects.length <= 1);
    });

    it('refuses a WebSocket from a page of another origin', async () => {
      const ws = new WebSocket(`ws://${daemon.httpEndpoint}/live`, { origin: 'http://evil.example' });
      const status = await new Promise<number>((resolve) =>
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode!)),
      );
      assert.equal(status, 403);
    });
  });

  describe('with --rpc-token', () => {
    let daemon: TestDaemon;
    before(async () => {
      daemon = await startTestDaemon(['--http-port', '0', '--rpc-token', 's3cret']);
    });
    after(() => daemon.stop());

    it('answers 401 without the token on every endpoint but /metrics', async () => {
      for (const path of ['/', '/api/status', '/api/objects', '/api/names', '/api/instances', '/dashboard/app.js']) {
        assert.equal((await get(daemon, path)).status, 401, path);
        assert.equal((await get(daemon, path, { authorization: 'Bearer wrong' })).status, 401, path);
      }
      assert.equal((await get(daemon, '/metrics')).status, 200);
      const ws = new WebSocket(`ws://${daemon.httpEndpoint}/live`);
      const status = await new Promise<number>((resolve) =>
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode!)),
      );
      assert.equal(status, 401);
    });

    it('answers 200 with the token as a bearer header, a query parameter or the page cookie', async () => {
      assert.equal((await get(daemon, '/api/status', { authorization: 'Bearer s3cret' })).status, 200);
      assert.equal((await get(daemon, '/api/status?token=s3cret')).status, 200);
      const page = await get(daemon, '/?token=s3cret');
      assert.equal(page.status, 200);
      const cookie = page.headers.get('set-cookie')!.split(';')[0];
      assert.equal((await get(daemon, '/dashboard/app.js', { cookie })).status, 200);
      const ws = new WebSocket(`ws://${daemon.httpEndpoint}/live?token=s3cret`);
      onCleanup(() => ws.terminate());
      const first = await new Promise<Record<string, unknown>>((resolve) =>
        ws.once('message', (data) => resolve(JSON.parse(data.toString()))),
      );
      assert.equal(first.type, 'history');
    });
  });

  it('shows the spare segment by state in /metrics: ready, then in use once a blob took it', async function () {
    this.timeout(60_000);
    const MiB = 1024 * 1024;
    // Standard segments of 32 MiB: a 48 MiB blob takes the 64 MiB spare as its own segment.
    const daemon = await startTestDaemon(['--http-port', '0', '--size', '256MiB', '--spare-segment', '64MiB']);
    const spare = async () => {
      const text = await (await get(daemon, '/metrics')).text();
      const states = ['reserving', 'ready', 'in_use'] as const;
      return Object.fromEntries(
        states.map((state) => [state, sample(text, `trellis_spare_segment_bytes{state="${state}"}`)]),
      );
    };
    await waitFor('the spare to be ready', async () => (await spare()).ready === 64 * MiB, 30_000);
    assert.deepEqual(await spare(), { reserving: 0, ready: 64 * MiB, in_use: 0 });
    const client = await connect(daemon.socket);
    onCleanup(() => client.close());
    const writer = await client.createBlob(48 * MiB);
    onCleanup(() => writer.abort().catch(() => {}));
    const after = await spare();
    assert.equal(after.in_use, 64 * MiB, JSON.stringify(after));
    // A new spare is reserved after a pause: not there yet, or on its way, or ready.
    assert.ok([0, 64 * MiB].includes(after.ready! + after.reserving!), JSON.stringify(after));
  });

  it('shows the read index in /metrics: slots by state, and the objects a full index refused', async () => {
    const daemon = await startTestDaemon(['--http-port', '0', '--read-index-slots', '64']);
    const index = async () => {
      const text = await (await get(daemon, '/metrics')).text();
      const slot = (state: string) => sample(text, `trellis_read_index_slots{state="${state}"}`);
      return {
        live: slot('live'),
        waiting: slot('waiting'),
        free: slot('free'),
        refused: sample(text, 'trellis_read_index_refused_total'),
      };
    };
    assert.deepEqual(await index(), { live: 0, waiting: 0, free: 64, refused: 0 });
    const client = await connect(daemon.socket);
    onCleanup(() => client.close());
    // More Buffers than the index has slots: the last ones find no room.
    const ids = await client.putMany(Array.from({ length: 100 }, (_, i) => Buffer.alloc(16, i)));
    await client.exists(ids[ids.length - 1]);
    const full = await index();
    assert.ok(full.live! > 0 && full.live! <= 64, JSON.stringify(full));
    assert.equal(full.live! + full.waiting! + full.free!, 64, JSON.stringify(full));
    assert.equal(full.refused, 100 - full.live!, JSON.stringify(full));
  });

  it('in a cluster, pages objects and names of every instance (read from etcd)', async () => {
    const etcd = await startEtcd();
    onCleanup(() => etcd.stop());
    const args = ['--etcd', etcd.endpoint, '--etcd-prefix', uniquePrefix('http'), '--http-port', '0'];
    const [one, two] = await Promise.all([startTestDaemon(args), startTestDaemon(args)]);
    onCleanup(() => Promise.all([one.stop(), two.stop()]));
    const client = await connect(one.socket);
    onCleanup(() => client.close());
    const id = await client.put({ text: 'remote' }, { name: 'api-remote' });

    // The second daemon never read the name: its page reads names from etcd, and their ids.
    await waitFor(
      'the second daemon to list the name',
      async () => (await json(two, '/api/names?pattern=api-*')).total === 1,
      10_000,
    );
    assert.deepEqual(await json(two, '/api/names?pattern=api-*'), {
      total: 1,
      offset: 0,
      limit: 100,
      names: [{ name: 'api-remote', id }],
    });
    const objects = await json(two, '/api/objects?limit=1000');
    assert.ok(
      objects.objects.some((object: { id: string }) => object.id === id),
      `the first daemon's object is on the second's page: ${JSON.stringify(objects)}`,
    );
  });

  it('logs JSON lines on stderr with --log-format json, keeping the ready line on stdout', async () => {
    const daemon = await startTestDaemon(['--log-format', 'json', '--log-level', 'debug']);
    const started = daemon
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line))
      .find((entry) => entry.msg === 'started');
    assert.ok(started, daemon.output());
    assert.equal(started.level, 30);
    assert.equal(started.socket, daemon.socket);
    assert.match(daemon.output(), /^trellisd ready socket=\S+ instance=0$/m);
  });

  it('refuses a bad --log-level', async () => {
    await assert.rejects(
      startTestDaemon(['--log-level', 'loud']),
      /--log-level must be one of debug\|info\|warn\|error, got loud/,
    );
  });
});
