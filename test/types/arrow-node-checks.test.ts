/**
 * The node checks read an Int's or Float's typed-array class from their own tables instead of
 * arrow's ArrayType getter (src/types/arrow-node-checks.ts, numberArrayType): for the
 * apache-arrow version installed, both must give the same class for every width and precision,
 * and a width arrow does not know must still throw as arrow's getter does.
 */
import * as assert from 'node:assert/strict';
import { Float, Int, Precision } from 'apache-arrow';
import { numberArrayType } from '../../src/types/arrow-node-checks';

describe('arrow node checks: number types', () => {
  it("an Int's and a Float's class is arrow's ArrayType, for every width and precision", () => {
    const types = [
      ...[8, 16, 32, 64].flatMap((bits) => [new Int(true, bits as 8), new Int(false, bits as 8)]),
      ...[Precision.HALF, Precision.SINGLE, Precision.DOUBLE].map((precision) => new Float(precision)),
    ];
    for (const type of types) assert.equal(numberArrayType(type), type.ArrayType, String(type));
  });

  it('a width or precision arrow does not know throws as arrow does', () => {
    assert.throws(() => numberArrayType(new Int(true, 12 as 8)), /Unrecognized/);
    assert.throws(() => numberArrayType(new Float(7 as Precision)), /Unrecognized/);
  });
});
