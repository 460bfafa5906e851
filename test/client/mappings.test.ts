import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SegmentMappings } from '../../src/client/mappings';

const MiB = 1024 * 1024;

/** kB of shared memory this process maps with 2 MiB page-table entries (all mappings). */
function pmdMappedKiB(): number {
  let total = 0;
  for (const match of fs.readFileSync('/proc/self/smaps', 'utf8').matchAll(/^ShmemPmdMapped:\s+(\d+) kB$/gm))
    total += Number(match[1]);
  return total;
}

/** An open file of `bytes` bytes in `dir` (byte i = i % 251), unlinked at once. */
function patternFile(dir: string, bytes: number): number {
  const file = path.join(dir, `segment-${process.pid}`);
  const content = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) content[i] = i % 251;
  fs.writeFileSync(file, content);
  const fd = fs.openSync(file, 'r');
  fs.unlinkSync(file);
  return fd;
}

describe('SegmentMappings on huge pages', () => {
  // A tmpfs mounted with huge=always stands for a --shm-dir on huge pages. Mounting needs root;
  // elsewhere the suite is skipped (the 4 KiB path is what every other client test runs).
  let dir = '';
  let mounted = false;
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-huge-'));
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'huge=always,size=32m', 'trellis-huge', dir], {
      timeout: 10_000,
    });
    // A file on a tmpfs that gives it huge pages reports them as its block size.
    const probe = path.join(dir, 'probe');
    if (mount.status === 0) fs.writeFileSync(probe, 'x');
    if (mount.status !== 0 || fs.statSync(probe).blksize < 2 * MiB) {
      if (mount.status === 0) spawnSync('umount', [dir], { timeout: 10_000 });
      fs.rmSync(dir, { recursive: true, force: true });
      this.skip();
    }
    fs.unlinkSync(probe);
    mounted = true;
  });
  after(() => {
    if (mounted) spawnSync('umount', ['-l', dir], { timeout: 10_000 });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("maps a blob's huge pages into the page tables at its first view; the bytes read the same", () => {
    const mappings = new SegmentMappings();
    const fd = patternFile(dir, 16 * MiB);
    mappings.add(1, fd, 16 * MiB);
    try {
      const before = pmdMappedKiB();
      const small = mappings.view({ id: 'small', segment: 1, offset: 64, size: 1000 });
      const afterSmall = pmdMappedKiB();
      assert.equal(afterSmall - before, 2048, 'the one huge page that holds the small blob');
      const large = mappings.view({ id: 'large', segment: 1, offset: 3 * MiB + 128, size: 8 * MiB });
      // Pages 1 to 5 of 2 MiB; page 0 was mapped already (the large blob starts in page 1).
      assert.equal(pmdMappedKiB() - afterSmall, 5 * 2048);
      assert.equal(small[0], 64 % 251);
      for (let i = 0; i < large.length; i += 4093) assert.equal(large[i], (3 * MiB + 128 + i) % 251);
      assert.ok(mappings.isSharedMemory(large));
    } finally {
      mappings.close();
    }
  });
});
