/**
 * A --size larger than the machine holds: the daemon says so at start, and answers OutOfMemory
 * where the machine runs out instead of being killed by the kernel. Needs root: the tests mount
 * their own small tmpfs and make their own memory cgroup, and skip (saying why) where they cannot.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connect, type Client } from '../../src/index';
import { memoryHierarchies } from '../../src/daemon/machine-capacity';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { tempPath } from '../fixtures/setup';
import { expectRejects } from '../fixtures/trellis-errors';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Creates `size`-byte blobs, each filled with its index, until the daemon answers an error. */
async function fillUntilRefused(
  client: Client,
  size: number,
  most: number,
): Promise<{ ids: string[]; error: unknown }> {
  const ids: string[] = [];
  for (let i = 0; i < most; i++) {
    let writer;
    try {
      writer = await client.createBlob(size);
    } catch (error) {
      return { ids, error };
    }
    writer.buffer.fill(i + 1);
    ids.push(await writer.seal());
  }
  return { ids, error: undefined };
}

async function untilOutput(daemon: TestDaemon, pattern: RegExp, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(daemon.output()) && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 20));
  assert.match(daemon.output(), pattern);
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

describe('a --size larger than the machine holds', function () {
  describe('on a 64 MiB tmpfs', function () {
    let shmDir = '';

    // A fresh tmpfs for each test: this process's clients may map its files until they are collected.
    beforeEach(function () {
      if (process.getuid?.() !== 0) this.skip(); // mounting a tmpfs needs root
      shmDir = tempPath('small-shm');
      fs.mkdirSync(shmDir);
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', shmDir], { stdio: 'pipe' });
      } catch (error) {
        fs.rmdirSync(shmDir);
        shmDir = '';
        console.log(`      (skipped: cannot mount a tmpfs: ${(error as Error).message.split('\n')[0]})`);
        this.skip();
      }
    });

    afterEach(() => {
      if (shmDir === '') return;
      // Lazily: mappings this process still holds keep the pages until they are collected.
      execFileSync('umount', ['--lazy', shmDir], { stdio: 'pipe' });
      fs.rmdirSync(shmDir);
      shmDir = '';
    });

    it('warns at start, answers OutOfMemory past the tmpfs and keeps serving', async () => {
      const daemon = await startTestDaemon(['--shm-dir', shmDir, '--size', '1GiB']);
      await untilOutput(
        daemon,
        new RegExp(
          `^trellisd: --size 1 GiB exceeds what this machine can hold now \\(MemAvailable [^,]+, ` +
            `${escape(shmDir)} free [^,]+ of 64 MiB, cgroup limit [^)]+\\): OutOfMemory will be answered past about ` +
            `\\d+(\\.\\d+)? MiB \\(${escape(shmDir)} has .* free of 64 MiB\\); to hold more, enlarge ${escape(shmDir)}`,
          'm',
        ),
      );
      const client = await connect(daemon.socket);
      const before = await client.status();
      assert.equal(before.memoryLimit, GiB, 'memoryLimit stays --size');
      assert.ok(before.memoryCapacity <= 64 * MiB, `memoryCapacity ${before.memoryCapacity} is bounded by the tmpfs`);

      const { ids, error } = await fillUntilRefused(client, 16 * MiB, 8);
      assert.ok(ids.length >= 2, `${ids.length} blobs of 16 MiB fit in 64 MiB`);
      await expectRejects(
        Promise.reject(error),
        'OutOfMemory',
        new RegExp(
          `^createBlob\\(16777216\\): 16777216 bytes \\(16 MiB\\) do not fit; this machine can hold only .* more now ` +
            `\\(${escape(shmDir)} has .* free of 64 MiB\\); .* of the 1 GiB limit in use`,
        ),
      );

      // Nobody was killed: the daemon still serves, the bytes are intact, and a delete makes room.
      assert.equal(daemon.process.exitCode, null);
      const first = await client.getBlob(ids[0]);
      assert.equal(first.size, 16 * MiB);
      assert.equal(first.buffer[0], 1);
      assert.equal(first.buffer[16 * MiB - 1], 1);
      const last = await client.getBlob(ids[ids.length - 1]);
      assert.equal(last.buffer[12345], ids.length);
      await client.release([ids[0], ids[ids.length - 1]]);
      await client.delete(ids[ids.length - 1]);
      const again = await client.createBlob(16 * MiB);
      await again.seal();
      assert.ok((await client.status()).memoryReserved <= 64 * MiB);
      await client.close();
      assert.equal(await daemon.stop(), 0);
    });

    it('starts even when the tmpfs is already full, and answers OutOfMemory', async () => {
      const filler = path.join(shmDir, 'filler');
      execFileSync('fallocate', ['-l', '64MiB', filler], { stdio: 'pipe' });
      try {
        const daemon = await startTestDaemon(['--shm-dir', shmDir, '--size', '1GiB']);
        const client = await connect(daemon.socket);
        await expectRejects(
          client.createBlob(1024),
          'OutOfMemory',
          /^createBlob\(1024\): .*this machine can hold only 0 B more now/,
        );
        assert.equal((await client.status()).memoryCapacity, 0);
        await client.close();
        assert.equal(await daemon.stop(), 0);
      } finally {
        fs.rmSync(filler, { force: true });
      }
    });
  });

  describe('in a memory cgroup', function () {
    let cgroup: CgroupBox | undefined;

    before(function () {
      if (process.getuid?.() !== 0) this.skip(); // making a cgroup needs root
      const made = makeCgroup(256 * MiB);
      if (typeof made === 'string') {
        console.log(`      (skipped: ${made})`);
        this.skip();
      }
      cgroup = made;
    });

    after(() => {
      if (!cgroup) return;
      // The daemon exited after its test; an empty cgroup can be removed.
      for (let tries = 0; ; tries++) {
        try {
          fs.rmdirSync(cgroup.dir);
          break;
        } catch (error) {
          if (tries >= 50) throw error;
          execFileSync('sleep', ['0.1']);
        }
      }
    });

    it('answers OutOfMemory before the cgroup limit, naming it', async () => {
      const box = cgroup!;
      const daemon = await startTestDaemon(['--size', '1GiB']);
      // Moved after it started: the daemon reads its cgroup each time it makes a segment.
      fs.writeFileSync(path.join(box.dir, 'cgroup.procs'), String(daemon.process.pid));
      const client = await connect(daemon.socket);
      const status = await client.status();
      assert.ok(status.memoryCapacity < status.memoryReserved + 256 * MiB, `capacity ${status.memoryCapacity}`);

      const { ids, error } = await fillUntilRefused(client, 100 * MiB, 8);
      await expectRejects(
        Promise.reject(error),
        'OutOfMemory',
        new RegExp(
          `^createBlob\\(104857600\\): 104857600 bytes \\(100 MiB\\) do not fit; this machine can hold only .* more now ` +
            `\\(memory cgroup ${escape(box.dir)} has .* of its 256 MiB limit in use, less a 64 MiB safety margin\\)`,
        ),
      );
      assert.ok(ids.length >= 1);
      assert.equal(daemon.process.exitCode, null, 'not killed by the cgroup OOM killer');
      const first = await client.getBlob(ids[0]);
      assert.equal(first.buffer[100 * MiB - 1], 1);
      await client.close();
      assert.equal(await daemon.stop(), 0);
    });
  });
});

interface CgroupBox {
  dir: string;
}

/**
 * A child of this process's memory cgroup (v1 or v2) limited to `limit` bytes, or why there
 * cannot be one here. A child, so that whatever limits and accounts for this process still does.
 */
function makeCgroup(limit: number): CgroupBox | string {
  const membership = fs.readFileSync('/proc/self/cgroup', 'utf8');
  const hierarchy = memoryHierarchies(fs.readFileSync('/proc/self/mountinfo', 'utf8')).sort(
    (a, b) => a.version - b.version,
  )[0];
  if (!hierarchy) return 'no cgroup hierarchy with the memory controller is mounted';
  const line = membership
    .split('\n')
    .map((text) => /^(\d+):([^:]*):(.*)$/.exec(text))
    .find((m) => m && (hierarchy.version === 2 ? m[1] === '0' && m[2] === '' : m[2].split(',').includes('memory')));
  if (!line) return 'this process is in no memory cgroup';
  const own = line[3].startsWith(hierarchy.mountRoot) ? line[3].slice(hierarchy.mountRoot.length) : line[3];
  const dir = path.join(hierarchy.mountPoint, own, `trellis-test-${process.pid}`);
  try {
    fs.mkdirSync(dir);
  } catch (error) {
    return `cannot make a cgroup under ${path.dirname(dir)}: ${(error as Error).message}`;
  }
  const limitFile = path.join(dir, hierarchy.version === 2 ? 'memory.max' : 'memory.limit_in_bytes');
  try {
    fs.writeFileSync(limitFile, String(limit));
  } catch (error) {
    fs.rmdirSync(dir);
    return `cannot limit the memory of ${dir} (is the memory controller delegated?): ${(error as Error).message}`;
  }
  return { dir };
}
