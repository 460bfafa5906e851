/**
 * The bench's A/B mode: the order of each pair, the statistics over pairs (bench/lib/ab-stats.ts),
 * and how runPairs lines samples up (bench/lib/ab.ts). No timing: samples are given numbers.
 */
import * as assert from 'node:assert/strict';
import { runPairs, type AbContext } from '../../bench/lib/ab';
import { bootstrapMedianInterval, compareAB, median, pairOrder } from '../../bench/lib/ab-stats';
import type { AbBuild } from '../../bench/lib/ab-build';
import { Scope } from '../../bench/lib/scope';

describe('bench A/B statistics', () => {
  it('alternates which build goes first, pair by pair', () => {
    assert.deepEqual([0, 1, 2, 3].map(pairOrder), [
      ['A', 'B'],
      ['B', 'A'],
      ['A', 'B'],
      ['B', 'A'],
    ]);
  });

  it('takes the median of per-pair ratios, which a load shared by both sides of a pair cancels', () => {
    // Each pair's load multiplies both of its samples; B is always 10% slower than A.
    const load = [1, 3, 1.5, 2.5, 1.2, 4, 1, 2];
    const a = load.map((l) => 2 * l);
    const b = load.map((l) => 2.2 * l);
    const compared = compareAB(a, b);
    assert.equal(compared.pairs, 8);
    assert.ok(Math.abs(compared.pairRatio - 1.1) < 1e-9, String(compared.pairRatio));
    assert.ok(Math.abs(compared.interval[0] - 1.1) < 1e-9 && Math.abs(compared.interval[1] - 1.1) < 1e-9);
    assert.equal(compared.verdict, 'B higher');
    assert.equal(compared.bLowerIn, 0);
    assert.equal(compared.aMedian, median(a));
    assert.equal(compared.bMedian, median(b));
  });

  it('says there is no clear difference when the pairs disagree, and B lower when they agree it is', () => {
    const a = [10, 10, 10, 10, 10, 10];
    assert.equal(compareAB(a, [9, 11, 9.5, 10.5, 9, 11]).verdict, 'no clear difference');
    const lower = compareAB(a, [9, 9.2, 8.8, 9.1, 9, 8.9]);
    assert.equal(lower.verdict, 'B lower');
    assert.equal(lower.bLowerIn, 6);
    assert.ok(lower.interval[0] <= lower.pairRatio && lower.pairRatio <= lower.interval[1]);
  });

  it('leaves out a pair missing either sample, on both sides', () => {
    const compared = compareAB([1, NaN, 3, 4], [2, 5, Number.POSITIVE_INFINITY, 8]);
    assert.equal(compared.pairs, 2);
    assert.equal(compared.aMedian, 2.5);
    assert.equal(compared.bMedian, 5);
    assert.ok(Number.isNaN(compared.interval[0]), 'no interval from 2 pairs');
    assert.equal(compared.verdict, 'no clear difference');
  });

  it('gives the same bootstrap interval for the same samples and seed', () => {
    const values = [0.9, 1.05, 0.97, 1.2, 0.85, 1.01, 0.99, 1.1, 0.93];
    const first = bootstrapMedianInterval(values, 500, 0.95, 7);
    assert.deepEqual(bootstrapMedianInterval(values, 500, 0.95, 7), first);
    assert.ok(first[0] <= median(values) && median(values) <= first[1], String(first));
    assert.ok(first[0] >= Math.min(...values) && first[1] <= Math.max(...values));
  });
});

describe('bench A/B runPairs', () => {
  const scope = new Scope();
  after(() => scope.close());
  const build = (label: 'A' | 'B'): AbBuild => ({ label, root: `/builds/${label}`, description: label });
  const context: AbContext = {
    scope,
    log: () => {},
    options: new Map(),
    builds: { A: build('A'), B: build('B') },
  };

  it('samples each build once a pair in the alternating order, and lines metrics up by pair', async () => {
    const calls: string[] = [];
    const samples = await runPairs(context, 4, async (b, pair) => {
      calls.push(`${pair}${b.label}`);
      // A metric that appears only from pair 2 on, and only for B: earlier pairs and A get NaN.
      const late: Record<string, number> = pair >= 2 && b.label === 'B' ? { late: pair } : {};
      return { first: pair * 10 + (b.label === 'A' ? 1 : 2), ...late };
    });
    assert.deepEqual(calls, ['0A', '0B', '1B', '1A', '2A', '2B', '3B', '3A']);
    assert.deepEqual(samples.metrics, ['first', 'late']);
    assert.deepEqual(samples.A.first, [1, 11, 21, 31]);
    assert.deepEqual(samples.B.first, [2, 12, 22, 32]);
    assert.deepEqual(samples.A.late, [NaN, NaN, NaN, NaN]);
    assert.deepEqual(samples.B.late, [NaN, NaN, 2, 3]);
  });
});
