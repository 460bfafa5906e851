/**
 * GET /metrics: Prometheus text, built with prom-client from the daemon's state when scraped
 * (gauges with collect()), the per-kind request stats (request-stats.ts), and prom-client's
 * default process metrics (CPU, memory, event loop lag, GC, handles).
 *
 * A registry of its own, not prom-client's global one: two daemons in one process (tests,
 * embedding) each report their own.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DaemonStatus } from '../../protocol/messages';
import { DURATION_BUCKETS, type RequestStats } from '../request-stats';
import type { DaemonView } from './daemon-view';

export class DaemonMetrics {
  readonly registry = new Registry();
  private status?: DaemonStatus;

  constructor(view: DaemonView, requests: RequestStats) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    // One status read per scrape, shared by the gauges below (text() forgets it before each).
    const current = () => (this.status ??= view.status());
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    gauge('trellis_memory_used_bytes', 'Bytes of shared memory held by blobs.', () => current().memoryUsage);
    gauge('trellis_memory_limit_bytes', 'The --size limit on shared memory.', () => current().memoryLimit);
    gauge(
      'trellis_memory_capacity_bytes',
      'What shared memory can grow to now (the limit, or less when the machine holds less).',
      () => current().memoryCapacity,
    );
    gauge(
      'trellis_memory_reserved_bytes',
      'Bytes of shared memory in segments, used or free.',
      () => current().memoryReserved,
    );
    new Gauge({
      name: 'trellis_spare_segment_bytes',
      help:
        'Bytes of the spare segment (--spare-segment) by state: reserving (being reserved), ready (for the next ' +
        'blob that needs a new segment), in_use (spares blobs took, until their segment is released).',
      labelNames: ['state'],
      registers,
      collect() {
        const spare = view.spareSegment();
        this.set({ state: 'reserving' }, spare.reserving);
        this.set({ state: 'ready' }, spare.ready);
        this.set({ state: 'in_use' }, spare.inUse);
      },
    });
    new Gauge({
      name: 'trellis_read_index_slots',
      help:
        'Slots of the read index clients get small objects from with no request (--read-index-slots), by state: ' +
        'live (an object), waiting (a removed object some client still views), free. Absent when the index is off.',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = view.readIndex();
        if (counts === undefined) return;
        this.set({ state: 'live' }, counts.live);
        this.set({ state: 'waiting' }, counts.waiting);
        this.set({ state: 'free' }, counts.slots - counts.live - counts.waiting);
      },
    });
    new Counter({
      name: 'trellis_read_index_refused_total',
      help:
        'Objects the read index had no room for since the daemon started: clients get them through the daemon, a ' +
        'request each (a full index: see --read-index-slots).',
      registers,
      collect() {
        const counts = view.readIndex();
        if (counts === undefined) return;
        this.reset();
        this.inc(counts.refused);
      },
    });
    gauge('trellis_objects', 'Objects in this daemon, sealed or not.', () => current().objects);
    gauge('trellis_names', 'Names published on this daemon.', () => current().names);
    gauge('trellis_streams', 'Open streams.', () => current().streams);
    gauge(
      'trellis_clients',
      "Connected clients: local, remote (RPC) and the daemon's own jobs.",
      () => current().clients,
    );
    gauge('trellis_spilled_bytes', 'Bytes of sealed blobs on disk, not in memory.', () => current().spilled.bytes);
    gauge('trellis_spilled_objects', 'Sealed blobs on disk, not in memory.', () => current().spilled.objects);
    gauge(
      'trellis_persisted_objects',
      'Objects this daemon has persisted (on disk with --data-dir).',
      () => current().persisted,
    );
    gauge(
      'trellis_cluster_instances_alive',
      'Instances of the cluster alive as this daemon sees them (1 without --etcd).',
      () => view.instances().instances.filter((instance) => instance.alive).length,
    );
    new Counter({
      name: 'trellis_requests_total',
      help: 'Requests answered, by kind.',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        for (const kind of requests.all()) this.inc({ kind: kind.kind }, kind.count);
      },
    });
    new Counter({
      name: 'trellis_request_errors_total',
      help: 'Requests answered with an error, by kind.',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        for (const kind of requests.all()) if (kind.errors > 0) this.inc({ kind: kind.kind }, kind.errors);
      },
    });
    this.registry.registerMetric(new RequestDurations(requests));
    requests.timing = true;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    this.status = undefined;
    return this.registry.metrics();
  }
}

/**
 * trellis_request_duration_seconds, read from the buckets RequestStats fills: a prom-client
 * Histogram whose values come from there rather than from observe().
 */
class RequestDurations extends Histogram<'kind' | 'le'> {
  static readonly HELP = "Time from a request's arrival to its reply, by kind.";
  readonly help = RequestDurations.HELP;
  constructor(private readonly requests: RequestStats) {
    super({
      name: 'trellis_request_duration_seconds',
      help: RequestDurations.HELP,
      labelNames: ['kind'],
      buckets: [...DURATION_BUCKETS],
      registers: [],
    });
  }

  override get(): ReturnType<Histogram<'kind' | 'le'>['get']> {
    return this.getForPromString();
  }

  /** What the registry reads for the text format (prom-client prefers it to get() when present). */
  async getForPromString(): ReturnType<Histogram<'kind' | 'le'>['get']> {
    const name = 'trellis_request_duration_seconds';
    type Result = Awaited<ReturnType<Histogram<'kind' | 'le'>['get']>>;
    const values: Result['values'] = [];
    for (const stats of this.requests.all()) {
      if (stats.timed === 0) continue;
      const kind = stats.kind;
      let cumulative = 0;
      DURATION_BUCKETS.forEach((le, i) => {
        cumulative += stats.buckets[i];
        values.push({ metricName: `${name}_bucket`, labels: { kind, le }, value: cumulative });
      });
      values.push({ metricName: `${name}_bucket`, labels: { kind, le: '+Inf' }, value: stats.timed });
      values.push({ metricName: `${name}_sum`, labels: { kind }, value: stats.sum });
      values.push({ metricName: `${name}_count`, labels: { kind }, value: stats.timed });
    }
    // The shape Histogram's own get() returns (super's would call back into this method).
    return { name, help: this.help, type: 'histogram', aggregator: 'sum', values } as unknown as Result;
  }
}
