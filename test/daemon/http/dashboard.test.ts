/**
 * The dashboard in a real headless browser (Debian's chromium, driven by playwright-core): it
 * loads with no page errors and shows an object another process puts, without a reload.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { REPO_ROOT, startChild } from '../../fixtures/child';
import { startTestDaemon } from '../../fixtures/daemon';
import { onCleanup, tempPath } from '../../fixtures/setup';

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** Set TRELLIS_UPDATE_SCREENSHOT=1 to refresh the README's picture. */
const README_SCREENSHOT = path.join(REPO_ROOT, 'docs', 'dashboard.png');

describe('the dashboard in a browser', function () {
  this.timeout(60_000);
  let browser: Browser;

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) {
      console.log(`    (skipped: no chromium at ${CHROMIUM}; install it with: sudo apt-get install chromium)`);
      this.skip();
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });
  after(() => browser?.close());

  it('shows an object put by another process, live, with no page errors', async () => {
    const daemon = await startTestDaemon(['--http-port', '0', '--rpc-token', 'tok']);
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    onCleanup(() => page.close());
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    await page.goto(`http://${daemon.httpEndpoint}/?token=tok`);
    await page.waitForSelector('#connection.live');
    await page.locator('#objects', { hasText: 'none' }).waitFor();

    const publisher = startChild('name-publisher.ts', [daemon.socket, 'seen-live', '0', 'hello']);
    const { id } = await publisher.next<{ id: string }>();
    await publisher.exited;
    const row = page.locator(`#objects tr[data-id="${id}"]`);
    await row.waitFor({ timeout: 10_000 });
    assert.match(await row.innerText(), /seen-live/);
    await page.locator('#names', { hasText: 'seen-live' }).waitFor();
    assert.match(await page.locator('#summary').innerText(), /OBJECTS\s+1/i);
    assert.equal(await page.locator('#chart canvas').count(), 1);

    const shot = tempPath('dashboard.png');
    await page.screenshot({ path: shot });
    assert.ok(fs.statSync(shot).size > 10_000);
    if (process.env.TRELLIS_UPDATE_SCREENSHOT === '1' || !fs.existsSync(README_SCREENSHOT)) {
      fs.mkdirSync(path.dirname(README_SCREENSHOT), { recursive: true });
      await page.screenshot({ path: README_SCREENSHOT, clip: { x: 0, y: 0, width: 1200, height: 760 } });
    }
    assert.deepEqual(problems, []);
  });
});
