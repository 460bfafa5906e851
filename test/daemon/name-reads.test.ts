/**
 * Which requests read names (daemon/name-reads.ts): those a cluster daemon holds back while it
 * cannot vouch for its view of the names. A request by id never waits; one by name always does.
 */
import * as assert from 'node:assert/strict';
import { nameRead } from '../../src/daemon/name-reads';

const ID = 'o0001000000000001';

describe('name reads', () => {
  it('names the requests that read names, and no request by id', () => {
    assert.equal(nameRead('getName', { name: 'prices' }), 'getName "prices"');
    assert.equal(nameRead('listNames', {}), 'listNames');
    assert.equal(nameRead('getObject', { ref: 'prices' }), 'getObject "prices"');
    assert.equal(nameRead('getObjects', { refs: [ID, 'prices'] }), 'getObjects "prices"');
    assert.equal(nameRead('getObject', { ref: ID }), undefined);
    assert.equal(nameRead('getObjects', { refs: [ID, ID] }), undefined);
    assert.equal(nameRead('put', { name: 'prices' }), undefined);
  });
});
