import * as assert from 'node:assert/strict';
import { registerBuilder, registerResolver } from '../../src/index';
import { builderFor, resolverFor } from '../../src/types/registry';
import '../../src/connect';

describe('type registry', () => {
  it('the longest typename prefix wins, matching whole name parts', () => {
    const general = () => 'general';
    const specific = () => 'specific';
    registerResolver('acme::', general);
    registerResolver('acme::Widget', specific);
    assert.equal(resolverFor('acme::Gadget'), general);
    assert.equal(resolverFor('acme::Widget'), specific);
    assert.equal(resolverFor('acme::Widget<int32>'), specific);
    assert.equal(resolverFor('acme::WidgetStream'), general, 'a prefix stops at a name boundary');
    assert.equal(resolverFor('other::Thing'), undefined);
    assert.notEqual(resolverFor('trellis::RecordBatchStream'), resolverFor('trellis::RecordBatch'));
  });

  it('a user builder registered later wins over the built-ins', async () => {
    class Celsius {
      constructor(readonly degrees: number) {}
    }
    const build = async () => 'o0000000000000001';
    registerBuilder((value) => value instanceof Celsius, build);
    assert.equal(builderFor(new Celsius(21)), build);
    assert.throws(() => builderFor(Symbol('x')), {
      code: 'TypeMismatch',
      message: /no builder takes a value of type symbol/,
    });
  });

  it('registration checks its arguments', () => {
    assert.throws(() => registerResolver('', () => 1), { code: 'InvalidArgument' });
    assert.throws(() => registerBuilder('x' as never, async () => ''), { code: 'InvalidArgument' });
  });
});
