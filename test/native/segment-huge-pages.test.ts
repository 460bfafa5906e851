import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { native } from '../../src/native';

const MiB = 1024 * 1024;
/** The background collapse competes with everything else for the CPU: on a busy machine it can take a while. */
const COLLAPSE_DEADLINE_MS = 30_000;

/** kB of shared memory this process maps with 2 MiB page-table entries (all mappings). */
function pmdMappedKiB(): number {
  let total = 0;
  for (const match of fs.readFileSync('/proc/self/smaps', 'utf8').matchAll(/^ShmemPmdMapped:\s+(\d+) kB$/gm))
    total += Number(match[1]);
  return total;
}

/** Why this kernel cannot collapse shmem into huge pages, or undefined when it can. */
function noCollapse(): string | undefined {
  const [major, minor] = os.release().split('.').map(Number);
  if (major < 6 || (major === 6 && minor < 1)) return `MADV_COLLAPSE needs Linux 6.1, this is ${os.release()}`;
  const setting = '/sys/kernel/mm/transparent_hugepage/shmem_enabled';
  if (!fs.existsSync(setting)) return 'this kernel has no transparent huge pages';
  if (fs.readFileSync(setting, 'utf8').includes('[deny]')) return 'shmem huge pages are denied (shmem_enabled=deny)';
  return undefined;
}

const pattern = (i: number) => (i * 7 + 3) % 251;

describe('native segment huge pages', () => {
  const dir = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();

  it('collapses its pages into huge pages in the background, under a live writer, bytes intact', async function () {
    const reason = noCollapse();
    if (reason) this.skip();
    this.timeout(COLLAPSE_DEADLINE_MS + 10_000);
    const size = 4 * MiB;
    const segment = new native.Segment(size, 'huge-pages-test', dir);
    try {
      // Written at once, while the collapse may be moving the pages underneath.
      const written = new Uint8Array(new native.Mapping(segment.fd, size, true).slice(0, size));
      for (let i = 0; i < size; i++) written[i] = pattern(i);
      const deadline = Date.now() + COLLAPSE_DEADLINE_MS;
      let mappedHuge = 0;
      let bytes = new Uint8Array(0);
      while (Date.now() < deadline) {
        // A fresh mapping each time: one made before the collapse keeps its 4 KiB entries.
        const before = pmdMappedKiB();
        bytes = new Uint8Array(new native.Mapping(segment.fd, size, false).buffer);
        for (let i = 0; i < size; i += 2 * MiB) assert.equal(bytes[i], pattern(i));
        mappedHuge = pmdMappedKiB() - before;
        if (mappedHuge >= size / 1024) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(mappedHuge, size / 1024, 'a new mapping maps the whole segment with 2 MiB entries');
      for (let i = 0; i < size; i++) if (bytes[i] !== pattern(i)) assert.fail(`byte ${i} changed under the collapse`);
    } finally {
      segment.release();
    }
  });

  it('stops collapsing a segment released meanwhile, and later segments still work', () => {
    // The collapse thread takes its own fd and mapping: a release under it must neither crash nor
    // keep the memory (the ASan run in .ci/run checks the native side).
    for (let round = 0; round < 3; round++) {
      const segment = new native.Segment(64 * MiB, 'huge-pages-release', dir);
      segment.release();
    }
    const segment = new native.Segment(4 * MiB, 'huge-pages-after', dir);
    try {
      const writable = new Uint8Array(new native.Mapping(segment.fd, 4 * MiB, true).slice(0, 4 * MiB));
      writable.fill(5);
      assert.equal(new Uint8Array(new native.Mapping(segment.fd, 4 * MiB, false).buffer)[4 * MiB - 1], 5);
    } finally {
      segment.release();
    }
  });
});
