/**
 * Request validation (daemon/validate.ts): any body, with any value in any field, is either
 * accepted or refused with InvalidArgument; no validator throws a TypeError on what it is given.
 */
import * as fc from 'fast-check';
import * as validators from '../../src/daemon/validate';
import { check, onlyTyped, runs } from './properties';

const FIELD = 'f';

/** Each validator, called on a body whose field FIELD (or its default field) holds the value. */
const VALIDATORS: Array<[string, (body: validators.Body) => unknown]> = [
  ['objectId', (body) => validators.objectId('k', body, FIELD)],
  ['objectIds', (body) => validators.objectIds('k', body, FIELD)],
  ['nonNegativeInteger', (body) => validators.nonNegativeInteger('k', body, FIELD)],
  ['optionalString', (body) => validators.optionalString('k', body, FIELD)],
  ['flag', (body) => validators.flag('k', body, FIELD, false)],
  ['optionalTypename', (body) => validators.optionalTypename('k', body, FIELD)],
  ['typename', (body) => validators.typename('k', { typename: body[FIELD] })],
  ['map', (body) => validators.map('k', body, FIELD)],
  ['bytes', (body) => validators.bytes('k', body, FIELD)],
  ['members', (body) => validators.members('k', { members: body[FIELD] })],
  ['labels', (body) => validators.labels('k', { labels: body[FIELD] })],
  ['fields', (body) => validators.fields('k', { fields: body[FIELD] })],
  ['nameRefs', (body) => validators.nameRefs('k', { names: body[FIELD], refs: body[FIELD] })],
  ['string', (body) => validators.string('k', body, FIELD)],
  ['optionalIds', (body) => validators.optionalIds('k', body, FIELD)],
  ['inlineBatch (sizes)', (body) => validators.inlineBatch('k', body[FIELD], Buffer.alloc(4))],
  ['inlineBatch (data)', (body) => validators.inlineBatch('k', [1, 3], body[FIELD])],
];

/** Values as msgpack can bring them: anything JSON-like, bytes, bigints, odd numbers. */
const value = fc.oneof(
  fc.anything({ maxDepth: 3, withBigInt: true, withNullPrototype: true, withTypedArray: true }),
  fc.uint8Array({ maxLength: 32 }).map((b) => Buffer.from(b)),
  fc.constantFrom(NaN, -0, Infinity, 2 ** 53, -1, 1.5, '', '__proto__', 'constructor'),
);

describe('fuzz: request validation', () => {
  it('expectBody takes any value and gives a body or InvalidArgument', () => {
    check(
      fc.property(value, (body) => onlyTyped(() => validators.expectBody('k', body), ['InvalidArgument'])),
      runs(2000),
    );
  });

  it('inlineBatch takes any sizes and data: a batch whose slices cover data exactly, or InvalidArgument', () => {
    const sizes = fc.array(fc.oneof(fc.integer({ min: -2, max: 70_000 }), value), { maxLength: 12 });
    check(
      fc.property(sizes, fc.uint8Array({ maxLength: 600 }), (given, bytes) =>
        onlyTyped(() => {
          const batch = validators.inlineBatch('k', given, Buffer.from(bytes));
          const total = batch.sizes.reduce((sum, size) => sum + size, 0);
          if (batch.sizes.length === 0 || total !== bytes.length) throw new Error('accepted a batch that does not fit');
        }, ['InvalidArgument']),
      ),
      runs(2000),
    );
  });

  for (const [name, validate] of VALIDATORS) {
    it(`${name} takes any field value and gives a value or InvalidArgument`, () => {
      check(
        fc.property(value, (field) => onlyTyped(() => validate({ [FIELD]: field }), ['InvalidArgument'])),
        runs(1000),
      );
    });
  }
});
