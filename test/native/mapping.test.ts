import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { native } from '../../src/native';
import { REPO_ROOT, TSX_ARGS } from '../fixtures/child';

const PAGE = 4096;

/** A file of `fileBytes` bytes (byte i = i % 251), open read-write; removed after the test. */
function patternFile(dir: string, fileBytes: number): number {
  const file = path.join(dir, `mapping-${process.pid}-${fileBytes}`);
  const bytes = Buffer.alloc(fileBytes);
  for (let i = 0; i < fileBytes; i++) bytes[i] = i % 251;
  fs.writeFileSync(file, bytes);
  const fd = fs.openSync(file, 'r+');
  fs.unlinkSync(file);
  return fd;
}

describe('native mapping populate', () => {
  let dir: string;
  const fds: number[] = [];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'trellis-mapping-'));
  });
  afterEach(() => {
    for (const fd of fds.splice(0)) fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('maps the pages of a range now, and the bytes read the same', () => {
    const fd = patternFile(dir, 64 * PAGE);
    fds.push(fd);
    const mapping = new native.Mapping(fd, 64 * PAGE, false);
    assert.equal(mapping.populate(3 * PAGE + 17, 20 * PAGE), 'populated');
    const bytes = new Uint8Array(mapping.buffer);
    for (let i = 0; i < bytes.length; i += 997) assert.equal(bytes[i], i % 251);
  });

  it('populates a writable mapping for writing, seen by a read-only mapping of the same file', () => {
    const fd = patternFile(dir, 16 * PAGE);
    fds.push(fd);
    const writable = new native.Mapping(fd, 16 * PAGE, true);
    assert.equal(writable.populate(0, 16 * PAGE), 'populated');
    new Uint8Array(writable.slice(PAGE, PAGE)).fill(7);
    const read = new Uint8Array(new native.Mapping(fd, 16 * PAGE, false).buffer);
    assert.equal(read[PAGE], 7);
    assert.equal(read[2 * PAGE - 1], 7);
    assert.equal(read[2 * PAGE], (2 * PAGE) % 251);
  });

  it('checks the range with a typed error naming it', () => {
    const fd = patternFile(dir, 4 * PAGE);
    fds.push(fd);
    const mapping = new native.Mapping(fd, 4 * PAGE, false);
    assert.throws(() => mapping.populate(0, 4 * PAGE + 1), {
      code: 'InvalidArgument',
      message: /range \[0\.0+, \+16385\.0+\) is outside a 16384-byte mapping/,
    });
    assert.throws(() => mapping.populate(-1, 1), { code: 'InvalidArgument' });
    assert.throws(() => mapping.populate('0' as unknown as number, 1), { code: 'InvalidArgument' });
    assert.equal(mapping.populate(PAGE, 0), 'populated', 'an empty range has nothing to do');
  });

  it('write copies bytes into a writable mapping at an offset, seen by a read-only mapping', () => {
    const fd = patternFile(dir, 16 * PAGE);
    fds.push(fd);
    const writable = new native.Mapping(fd, 16 * PAGE, true);
    const bytes = new Uint8Array(3 * PAGE + 5).fill(9);
    const before = process.memoryUsage().external;
    // From the middle of a larger buffer: its own offset counts, not its ArrayBuffer's start.
    writable.write(PAGE + 3, new Uint8Array(bytes.buffer, 5), true);
    assert.ok(process.memoryUsage().external - before < PAGE, 'no ArrayBuffer over the target');
    const read = new Uint8Array(new native.Mapping(fd, 16 * PAGE, false).buffer);
    assert.equal(read[PAGE + 2], (PAGE + 2) % 251);
    assert.equal(read[PAGE + 3], 9);
    assert.equal(read[4 * PAGE + 2], 9);
    assert.equal(read[4 * PAGE + 3], (4 * PAGE + 3) % 251);
  });

  it('write checks the range and refuses a read-only mapping', () => {
    const fd = patternFile(dir, 4 * PAGE);
    fds.push(fd);
    const writable = new native.Mapping(fd, 4 * PAGE, true);
    assert.throws(() => writable.write(3 * PAGE + 1, new Uint8Array(PAGE)), {
      code: 'InvalidArgument',
      message: /outside a 16384-byte mapping/,
    });
    assert.throws(() => writable.write(0, [1, 2] as unknown as Uint8Array), { code: 'InvalidArgument' });
    assert.throws(() => new native.Mapping(fd, 4 * PAGE, false).write(0, new Uint8Array(1)), {
      code: 'PermissionDenied',
    });
    const read = new Uint8Array(new native.Mapping(fd, 4 * PAGE, false).buffer);
    assert.equal(read[3 * PAGE + 1], (3 * PAGE + 1) % 251, 'nothing written');
  });

  it('answers failed, without SIGBUS, where the file is shorter than the mapping', () => {
    // In a child: a SIGBUS would kill the process that asked, and should fail this test alone.
    const script = `
      const fs = require('node:fs');
      const { native } = require(${JSON.stringify(path.join(REPO_ROOT, 'src', 'native'))});
      const file = ${JSON.stringify(path.join(dir, 'short'))};
      fs.writeFileSync(file, Buffer.alloc(${2 * PAGE}, 9));
      const fd = fs.openSync(file, 'r+');
      fs.unlinkSync(file);
      const read = new native.Mapping(fd, ${64 * PAGE}, false);
      const write = new native.Mapping(fd, ${64 * PAGE}, true);
      const answers = [read.populate(0, ${64 * PAGE}), write.populate(${PAGE}, ${63 * PAGE})];
      const bytes = new Uint8Array(read.buffer, 0, ${2 * PAGE});
      process.stdout.write(JSON.stringify({ answers, first: bytes[0], last: bytes[${2 * PAGE - 1}] }));
    `;
    const child = spawnSync(process.execPath, [...TSX_ARGS, '-e', script], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(child.signal, null, `the child was killed by ${child.signal}: ${child.stderr}`);
    assert.equal(child.status, 0, child.stderr);
    assert.deepEqual(JSON.parse(child.stdout), { answers: ['failed', 'failed'], first: 9, last: 9 });
  });
});

describe('native mapping sharedBuffer', () => {
  const MiB = 1024 * 1024;
  let dir: string;
  const fds: number[] = [];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'trellis-mapping-'));
  });
  afterEach(() => {
    for (const fd of fds.splice(0)) fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** An open file of `bytes` bytes that holds no memory (a hole) but its first page (byte i = i % 251). */
  function sparseFile(bytes: number): number {
    const fd = patternFile(dir, PAGE);
    fs.ftruncateSync(fd, bytes);
    fds.push(fd);
    return fd;
  }

  it('is one SharedArrayBuffer over the whole read-only mapping, which V8 does not count as external memory', () => {
    const size = 256 * MiB;
    const mapping = new native.Mapping(sparseFile(size), size, false);
    const before = process.memoryUsage().external;
    const shared = mapping.sharedBuffer;
    assert.ok(shared instanceof SharedArrayBuffer, 'built with V8 headers, run by the Node that built it');
    assert.equal(shared.byteLength, size);
    assert.equal(mapping.sharedBuffer, shared, 'made once');
    // More than 64 MiB of counted bytes would start a garbage collection (src/client/mappings.ts).
    assert.ok(process.memoryUsage().external - before < MiB, 'not counted');
    const bytes = new Uint8Array(shared);
    assert.equal(bytes[PAGE - 1], (PAGE - 1) % 251);
    assert.equal(bytes[size - 1], 0);
  });

  it('leaves no reserved address space behind a mapping whose size is no multiple of a page', () => {
    // Mappings are placed 2 MiB-aligned inside a larger PROT_NONE reservation whose tail is given
    // back; for a size such as the read index's (10 MiB + 64 B) the tail used to stay reserved.
    const size = 2 * MiB + 64;
    const mapping = new native.Mapping(sparseFile(size), size, false);
    assert.equal(new Uint8Array(mapping.buffer)[PAGE - 1], (PAGE - 1) % 251);
    const lines = fs.readFileSync('/proc/self/maps', 'utf8').split('\n');
    const ours = lines.filter((line) => line.includes(`mapping-${process.pid}-${PAGE}`));
    assert.ok(ours.length > 0, 'the mapping is listed');
    for (const line of ours) {
      const end = line.split(' ')[0].split('-')[1];
      const next = lines.find((other) => other.startsWith(`${end}-`));
      assert.ok(!next || !/ ---p 00000000 00:00 0\s*$/.test(next), `reserved address space left behind: ${next}`);
    }
  });

  it('says whether its file lies on huge pages, as the block size its tmpfs reports', () => {
    const fd = sparseFile(PAGE);
    const mapping = new native.Mapping(fd, PAGE, false);
    assert.equal(mapping.hugePages, fs.fstatSync(fd).blksize >= 2 * MiB);
  });

  it('is refused for a writable mapping, whose blobs are handed out one slice each', () => {
    const mapping = new native.Mapping(sparseFile(PAGE), PAGE, true);
    assert.throws(() => mapping.sharedBuffer, { code: 'PermissionDenied' });
  });

  it('keeps the memory mapped while a view of it outlives the Mapping', () => {
    // In a child with --expose-gc: collect the Mapping, then read through the view (an unmap
    // would kill the child with SIGSEGV and fail this test alone).
    const script = `
      const fs = require('node:fs');
      const { native } = require(${JSON.stringify(path.join(REPO_ROOT, 'src', 'native'))});
      const file = ${JSON.stringify(path.join(dir, 'kept'))};
      fs.writeFileSync(file, Buffer.alloc(${4 * PAGE}, 5));
      const fd = fs.openSync(file, 'r');
      fs.unlinkSync(file);
      let mapping = new native.Mapping(fd, ${4 * PAGE}, false);
      const view = Buffer.from(mapping.sharedBuffer, ${PAGE}, ${2 * PAGE});
      mapping = undefined;
      fs.closeSync(fd);
      setImmediate(() => {
        global.gc();
        setImmediate(() => process.stdout.write(JSON.stringify({ first: view[0], last: view[${2 * PAGE - 1}] })));
      });
    `;
    const child = spawnSync(process.execPath, ['--expose-gc', ...TSX_ARGS, '-e', script], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(child.signal, null, `the child was killed by ${child.signal}: ${child.stderr}`);
    assert.equal(child.status, 0, child.stderr);
    assert.deepEqual(JSON.parse(child.stdout), { first: 5, last: 5 });
  });
});
