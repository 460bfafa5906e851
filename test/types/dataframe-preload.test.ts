/**
 * preloadArrowLayout (src/types/dataframe.ts), which connect() calls: the arrow layout is loaded
 * ahead of the first DataFrame get only in a process that has loaded apache-arrow itself; a
 * process that has not keeps apache-arrow unloaded. Each case is a new process.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { REPO_ROOT, TSX_ARGS } from '../fixtures/child';

/** Runs preloadArrowLayout in a new process; which of the two modules are loaded after. */
function preloadIn(loadArrowFirst: boolean): { arrow: boolean; layout: boolean } {
  const script = `
    ${loadArrowFirst ? "require('apache-arrow');" : ''}
    require(${JSON.stringify(path.join(REPO_ROOT, 'src', 'types', 'dataframe'))}).preloadArrowLayout();
    const loaded = Object.keys(require.cache);
    process.stdout.write(JSON.stringify({
      arrow: loaded.some((file) => file.includes('/node_modules/apache-arrow/')),
      layout: loaded.some((file) => /arrow-layout\\.[jt]s$/.test(file)),
    }));
  `;
  const child = spawnSync(process.execPath, [...TSX_ARGS, '-e', script], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout) as { arrow: boolean; layout: boolean };
}

describe('preloadArrowLayout: the arrow layout before the first DataFrame get', () => {
  it('loads it in a process that has loaded apache-arrow', () => {
    assert.deepEqual(preloadIn(true), { arrow: true, layout: true });
  });

  it('loads neither in a process that has not', () => {
    assert.deepEqual(preloadIn(false), { arrow: false, layout: false });
  });
});
