/**
 * Request validation (daemon/validate.ts): any body, with any value in any field, is either
 * accepted or refused with InvalidArgument; no validator throws a TypeError on what it is given.
 */
import * as fc from 'fast-check';
import * as check from '../../src/daemon/validate';
import { onlyTyped, runs } from './properties';

const FIELD = 'f';

/** Each validator, called on a body whose field FIELD (or its default field) holds the value. */
const VALIDATORS: Array<[string, (body: check.Body) => unknown]> = [
  ['objectId', (body) => check.objectId('k', body, FIELD)],
  ['objectIds', (body) => check.objectIds('k', body, FIELD)],
  ['nonNegativeInteger', (body) => check.nonNegativeInteger('k', body, FIELD)],
  ['optionalString', (body) => check.optionalString('k', body, FIELD)],
  ['flag', (body) => check.flag('k', body, FIELD, false)],
  ['optionalTypename', (body) => check.optionalTypename('k', body, FIELD)],
  ['typename', (body) => check.typename('k', { typename: body[FIELD] })],
  ['map', (body) => check.map('k', body, FIELD)],
  ['bytes', (body) => check.bytes('k', body, FIELD)],
  ['members', (body) => check.members('k', { members: body[FIELD] })],
  ['labels', (body) => check.labels('k', { labels: body[FIELD] })],
  ['fields', (body) => check.fields('k', { fields: body[FIELD] })],
  ['nameRefs', (body) => check.nameRefs('k', { names: body[FIELD], refs: body[FIELD] })],
  ['string', (body) => check.string('k', body, FIELD)],
  ['optionalIds', (body) => check.optionalIds('k', body, FIELD)],
];

/** Values as msgpack can bring them: anything JSON-like, bytes, bigints, odd numbers. */
const value = fc.oneof(
  fc.anything({ maxDepth: 3, withBigInt: true, withNullPrototype: true, withTypedArray: true }),
  fc.uint8Array({ maxLength: 32 }).map((b) => Buffer.from(b)),
  fc.constantFrom(NaN, -0, Infinity, 2 ** 53, -1, 1.5, '', '__proto__', 'constructor'),
);

describe('fuzz: request validation', () => {
  it('expectBody takes any value and gives a body or InvalidArgument', () => {
    fc.assert(
      fc.property(value, (body) => onlyTyped(() => check.expectBody('k', body), ['InvalidArgument'])),
      runs(2000),
    );
  });

  for (const [name, validate] of VALIDATORS) {
    it(`${name} takes any field value and gives a value or InvalidArgument`, () => {
      fc.assert(
        fc.property(value, (field) => onlyTyped(() => validate({ [FIELD]: field }), ['InvalidArgument'])),
        runs(1000),
      );
    });
  }
});
