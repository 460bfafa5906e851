import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { native } from '../../src/native';

const MiB = 1024 * 1024;

/**
 * kB of the file behind `fd` this process maps with 2 MiB page-table entries. Only that file's
 * mappings count (by inode): the process's others come and go as the garbage collector frees
 * their buffers, which made a sum over all of them wrong between two readings in a full run.
 */
function pmdMappedKiB(fd: number): number {
  const inode = String(fs.fstatSync(fd).ino);
  let total = 0;
  let counting = false;
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    // A mapping's first line: address range, permissions, offset, device, inode, path.
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ (\d+)/.exec(line);
    if (head) counting = head[1] === inode;
    const pmd = counting && /^ShmemPmdMapped:\s+(\d+) kB$/.exec(line);
    if (pmd) total += Number(pmd[1]);
  }
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

  it('Segment.reserve gives a segment 2 MiB pages, which a mapping maps with 2 MiB entries', async function () {
    if (noCollapse()) this.skip();
    const size = 4 * MiB;
    const segment = await native.Segment.reserve(size, 'huge-pages-test', dir);
    try {
      assert.equal(segment.size, size);
      const written = new Uint8Array(new native.Mapping(segment.fd, size, true).slice(0, size));
      for (let i = 0; i < size; i++) written[i] = pattern(i);
      const before = pmdMappedKiB(segment.fd);
      const bytes = new Uint8Array(new native.Mapping(segment.fd, size, false).buffer);
      for (let i = 0; i < size; i++) if (bytes[i] !== pattern(i)) assert.fail(`byte ${i} reads ${bytes[i]}`);
      assert.equal(pmdMappedKiB(segment.fd) - before, size / 1024, 'the whole segment in 2 MiB entries');
      // The writing mapping stays until here: freed between the readings, it would change the count.
      assert.equal(written[0], pattern(0));
    } finally {
      segment.release();
    }
  });

  it('new Segment (on the event loop) keeps 4 KiB pages; both read zeros until written', async () => {
    const size = 4 * MiB;
    const plain = new native.Segment(size, 'plain-pages-test', dir);
    const reserved = await native.Segment.reserve(size, 'reserved-zeros-test', dir);
    try {
      const before = pmdMappedKiB(plain.fd);
      const plainBytes = new Uint8Array(new native.Mapping(plain.fd, size, false).buffer);
      for (let i = 0; i < size; i += 4096) assert.equal(plainBytes[i], 0);
      assert.equal(pmdMappedKiB(plain.fd) - before, 0);
      const reservedBytes = new Uint8Array(new native.Mapping(reserved.fd, size, false).buffer);
      for (let i = 0; i < size; i += 512) assert.equal(reservedBytes[i], 0, `byte ${i}`);
    } finally {
      plain.release();
      reserved.release();
    }
  });

  it('Segment.reserve rejects a segment the tmpfs cannot hold, naming its size', async () => {
    await assert.rejects(native.Segment.reserve(2 ** 50, 'too-large', dir), {
      message: /cannot reserve a 1125899906842624-byte segment/,
    });
  });
});
