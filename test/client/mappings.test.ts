import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SegmentMappings } from '../../src/client/mappings';

const MiB = 1024 * 1024;

/**
 * kB of `file` this process maps with 2 MiB page-table entries. Only that file's mappings count:
 * the process's other mappings come and go as the garbage collector frees their buffers (in a
 * full run, one of another test's went between two readings, 2048 kB).
 */
function pmdMappedKiB(file: string): number {
  let total = 0;
  let counting = false;
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    // A mapping's first line: its address range, then permissions, offset, device, inode, path.
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) counting = line.includes(file);
    const pmd = counting && /^ShmemPmdMapped:\s+(\d+) kB$/.exec(line);
    if (pmd) total += Number(pmd[1]);
  }
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
    const file = path.join(dir, `segment-${process.pid}`);
    mappings.add(1, fd, 16 * MiB);
    try {
      const before = pmdMappedKiB(file);
      const small = mappings.view({ id: 'small', segment: 1, offset: 64, size: 1000 });
      const afterSmall = pmdMappedKiB(file);
      assert.equal(afterSmall - before, 2048, 'the one huge page that holds the small blob');
      const large = mappings.view({ id: 'large', segment: 1, offset: 3 * MiB + 128, size: 8 * MiB });
      const afterLarge = pmdMappedKiB(file);
      // Pages 1 to 5 of 2 MiB; page 0 was mapped already (the large blob starts in page 1).
      assert.equal(afterLarge - afterSmall, 5 * 2048);
      // ...by the view: touching all of it maps no more.
      let sum = 0;
      for (let i = 0; i < large.length; i += 4096) sum += large[i];
      assert.ok(sum > 0);
      assert.equal(pmdMappedKiB(file), afterLarge, 'touching the blob maps no huge page its view left out');
      assert.equal(small[0], 64 % 251);
      for (let i = 0; i < large.length; i += 4093) assert.equal(large[i], (3 * MiB + 128 + i) % 251);
      assert.ok(mappings.isSharedMemory(large));
    } finally {
      mappings.close();
    }
  });
});

describe('SegmentMappings views', () => {
  let dir = '';
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'trellis-views-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /**
   * A segment of `bytes` whose first MiB holds the pattern and the rest is a hole (no memory);
   * the SegmentMappings it is added to closes the fd.
   */
  function segmentFile(bytes: number): number {
    const fd = fs.openSync(path.join(dir, 'segment'), 'w+');
    fs.unlinkSync(path.join(dir, 'segment'));
    const pattern = Buffer.alloc(MiB);
    for (let i = 0; i < MiB; i++) pattern[i] = i % 251;
    fs.writeSync(fd, pattern);
    fs.ftruncateSync(fd, bytes);
    return fd;
  }

  it('views every blob of a segment through one SharedArrayBuffer, which starts no garbage collection', () => {
    const mappings = new SegmentMappings();
    mappings.add(1, segmentFile(256 * MiB), 256 * MiB);
    const before = process.memoryUsage().external;
    const small = mappings.view({ id: 'small', segment: 1, offset: 64, size: 1000 });
    const large = mappings.view({ id: 'large', segment: 1, offset: 100, size: 200 * MiB });
    assert.ok(small.buffer instanceof SharedArrayBuffer);
    assert.equal(large.buffer, small.buffer, 'the segment is mapped once, as one buffer');
    // V8 collects garbage once counted external bytes grow by 64 MiB; these are not counted.
    assert.ok(process.memoryUsage().external - before < MiB);
    assert.equal(small[0], 64 % 251);
    assert.equal(large[MiB - 101], (MiB - 1) % 251);
    assert.equal(large.length, 200 * MiB);
    assert.ok(mappings.isSharedMemory(small) && mappings.isSharedMemory(large.buffer));
    mappings.close();
  });

  it('without SharedArrayBuffers views a small blob through its 16 MiB window, a large one through the segment', () => {
    const mappings = new SegmentMappings(false);
    mappings.add(1, segmentFile(64 * MiB), 64 * MiB);
    const small = mappings.view({ id: 'small', segment: 1, offset: 17 * MiB + 3, size: 10 });
    assert.ok(small.buffer instanceof ArrayBuffer);
    assert.equal(small.buffer.byteLength, 16 * MiB);
    assert.equal(small.byteOffset, MiB + 3);
    const spanning = mappings.view({ id: 'spanning', segment: 1, offset: 15 * MiB, size: 2 * MiB });
    assert.equal(spanning.buffer.byteLength, 64 * MiB);
    const first = mappings.view({ id: 'first', segment: 1, offset: 5, size: 5 });
    assert.equal(first[0], 5);
    assert.ok([small, spanning, first].every((view) => mappings.isSharedMemory(view)));
    mappings.close();
  });
});
