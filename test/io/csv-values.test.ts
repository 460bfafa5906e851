/**
 * The byte-level value readers: floats must equal Number() bit for bit (the fast paths included),
 * integers must stay exact to int64's limits, dates must match Date.parse.
 */
import * as assert from 'node:assert/strict';
import { formatDay } from '../../src/io/csv/field-writers';
import { readBool, readDate, readFloatText, readInt64Text, readSimpleFloat } from '../../src/io/csv/values';

function bytes(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

/** A seeded PRNG, so a failure can be reproduced. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

describe('csv: value readers', () => {
  it('reads floats exactly as Number() does, for 300,000 random decimals of 1 to 20 digits', () => {
    const next = random(7);
    const digit = () => String(Math.floor(next() * 10));
    for (let i = 0; i < 100_000; i++) {
      const length = 1 + Math.floor(next() * 20);
      let mantissa = '';
      for (let d = 0; d < length; d++) mantissa += digit();
      const dot = Math.floor(next() * (length + 1));
      const exponent = next() < 0.3 ? `e${Math.floor(next() * 60) - 30}` : '';
      const sign = next() < 0.3 ? '-' : '';
      for (const text of [
        `${sign}${mantissa.slice(0, dot)}.${mantissa.slice(dot)}${exponent}`,
        String((next() - 0.5) * 10 ** (Math.floor(next() * 40) - 20)),
        String(next()),
      ]) {
        const b = bytes(text);
        assert.ok(
          Object.is(readFloatText(b, 0, b.length), Number(text)),
          `${text}: ${readFloatText(b, 0, b.length)} != ${Number(text)}`,
        );
      }
    }
  });

  it('gets hard halfway cases right (or leaves them to Number())', () => {
    for (const text of [
      '9007199254740993',
      '9007199254740992.5',
      '0.1000000000000000055511151231257827',
      '2.2250738585072011e-308',
      '1.7976931348623157e308',
      '4.9406564584124654e-324',
      '1e23',
      '8.5e-1',
    ]) {
      const b = bytes(text);
      const fast = readSimpleFloat(b, 0, b.length);
      assert.ok(Number.isNaN(fast) || Object.is(fast, Number(text)), `fast path ${text}`);
      assert.ok(Object.is(readFloatText(b, 0, b.length), Number(text)), text);
    }
  });

  it('rejects what is not a float', () => {
    for (const text of ['', '.', '-', '1e', '1.2.3', '0x10', '1_000', 'abc', '1e5x', '--1']) {
      const b = bytes(text);
      assert.equal(readFloatText(b, 0, b.length), undefined, JSON.stringify(text));
    }
  });

  it('reads int64 to its limits and nothing beyond', () => {
    const cases: Array<[string, number | bigint | undefined]> = [
      ['0', 0],
      ['-0', -0],
      ['+17', 17],
      [' 42 ', 42],
      ['9007199254740993', 9007199254740993n],
      ['-9223372036854775808', -9223372036854775808n],
      ['9223372036854775807', 9223372036854775807n],
      ['9223372036854775808', undefined],
      ['1.0', undefined],
      ['', undefined],
      ['1 2', undefined],
    ];
    for (const [text, expected] of cases) {
      const b = bytes(text);
      assert.ok(Object.is(readInt64Text(b, 0, b.length), expected), `${text}: ${readInt64Text(b, 0, b.length)}`);
    }
  });

  it('reads booleans and ISO dates', () => {
    for (const [text, expected] of [
      ['true', 1],
      ['FALSE', 0],
      ['True', 1],
      [' false ', 0],
      ['yes', -1],
      ['1', -1],
    ] as const) {
      assert.equal(readBool(bytes(text), 0, text.length), expected, text);
    }
    for (const text of ['1970-01-01', '2024-02-29', '1900-03-01', '0001-01-01', '9999-12-31', '1969-07-20']) {
      assert.equal(readDate(bytes(text), 0, text.length) * 86_400_000, Date.parse(`${text}T00:00:00Z`), text);
    }
    for (const text of ['2023-02-29', '2024-13-01', '2024-00-10', '2024-1-01', '20240101', '2024-01-32']) {
      assert.ok(Number.isNaN(readDate(bytes(text), 0, text.length)), text);
    }
  });
});

describe('csv: value writers', () => {
  it('formats days as ISO dates, as Date does', () => {
    for (let days = -800_000; days < 3_000_000; days += 997) {
      assert.equal(formatDay(days), new Date(days * 86_400_000).toISOString().slice(0, 10), String(days));
    }
  });
});
