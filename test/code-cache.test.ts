/**
 * The code cache for dist/ (src/code-cache.ts): what it reads back, what it refuses, and that a
 * module loaded through it behaves as it would without it, whatever is in the cache folder.
 * Loading runs in child processes (the cache is written at exit), over a folder of small modules.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  cacheFileName,
  codeCacheDir,
  isPrivateDir,
  readCacheFile,
  removeStaleCaches,
  writeCacheFile,
} from '../src/code-cache';
import { REPO_ROOT, TSX_ARGS } from './fixtures/child';

describe('code cache', () => {
  let dir = '';
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-code-cache-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe('cache files', () => {
    const source = 'module.exports = 1;';
    const data = Buffer.from('v8 cached data stands here');

    it('reads back what was written for the same source', () => {
      const file = path.join(dir, 'a.js');
      writeCacheFile(file, source, data);
      assert.deepEqual(readCacheFile(file, source), { data, generation: 1 });
      writeCacheFile(file, source, data, 3);
      assert.equal(readCacheFile(file, source)?.generation, 3);
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      assert.deepEqual(fs.readdirSync(dir), ['a.js'], 'no temporary file left');
    });

    it('ignores a file made from another source of the same length, a corrupt one, a short one, a missing one', () => {
      const file = path.join(dir, 'a.js');
      writeCacheFile(file, source, data);
      assert.equal(readCacheFile(file, 'module.exports = 2;'), undefined, 'another source');
      const bytes = fs.readFileSync(file);
      bytes[bytes.length - 3] ^= 0xff;
      fs.writeFileSync(file, bytes);
      assert.equal(readCacheFile(file, source), undefined, 'one byte changed');
      fs.writeFileSync(file, bytes.subarray(0, 10));
      assert.equal(readCacheFile(file, source), undefined, 'shorter than its header');
      fs.writeFileSync(file, Buffer.alloc(64, 7));
      assert.equal(readCacheFile(file, source), undefined, 'not a cache file');
      assert.equal(readCacheFile(path.join(dir, 'missing.js'), source), undefined);
    });

    it('lives in a folder per trellis version, Node, architecture and install, under TRELLIS_CODE_CACHE_DIR', () => {
      const saved = process.env.TRELLIS_CODE_CACHE_DIR;
      process.env.TRELLIS_CODE_CACHE_DIR = dir;
      try {
        const folder = codeCacheDir('1.2.3', '/opt/app/node_modules/trellis/dist', []);
        assert.equal(path.dirname(folder), dir);
        assert.match(
          path.basename(folder),
          new RegExp(`^code-1\\.2\\.3-node${process.versions.node}-${process.arch}-[0-9a-f]{8}$`),
        );
        assert.notEqual(codeCacheDir('1.2.3', '/srv/other/node_modules/trellis/dist', []), folder);
      } finally {
        if (saved === undefined) delete process.env.TRELLIS_CODE_CACHE_DIR;
        else process.env.TRELLIS_CODE_CACHE_DIR = saved;
      }
    });
  });

  describe('options the process was started with', () => {
    it('get a folder per set of options, since V8 refuses cached data made under other flags', () => {
      const root = '/opt/app/node_modules/trellis/dist';
      const plain = codeCacheDir('1.2.3', root, []);
      const heap = codeCacheDir('1.2.3', root, ['--max-old-space-size=4096']);
      assert.match(path.basename(heap), /-[0-9a-f]{8}-f[0-9a-f]{8}$/);
      assert.equal(heap.slice(0, plain.length), plain, 'the same name, then the options');
      assert.equal(codeCacheDir('1.2.3', root, ['--max-old-space-size=4096']), heap, 'stable');
      assert.notEqual(codeCacheDir('1.2.3', root, ['--max-old-space-size=8192']), heap);
      assert.notEqual(codeCacheDir('1.2.3', root, ['--expose-gc']), heap);
    });

    it('are read from the command line and NODE_OPTIONS', () => {
      const script = `process.stdout.write(JSON.stringify(require(${JSON.stringify(
        path.join(REPO_ROOT, 'src', 'code-cache'),
      )}).startFlags()))`;
      const child = spawnSync(process.execPath, ['--expose-gc', ...TSX_ARGS, '-e', script], {
        cwd: REPO_ROOT,
        env: { ...process.env, NODE_OPTIONS: '--max-old-space-size=4096' },
        encoding: 'utf8',
        timeout: 30_000,
      });
      assert.equal(child.status, 0, child.stderr);
      const flags = JSON.parse(child.stdout) as string[];
      assert.ok(flags.includes('--expose-gc'), child.stdout);
      assert.equal(flags.at(-1), '--max-old-space-size=4096');
    });
  });

  describe('which modules', () => {
    const root = path.join('/opt', 'app', 'node_modules', 'trellis', 'dist');

    it("caches trellis's .js files and the .js/.cjs files of the packages named, wherever installed", () => {
      const named = ['msgpackr', 'apache-arrow'];
      assert.equal(cacheFileName(root, path.join(root, 'client', 'ipc.js'), named), 'client!ipc.js');
      assert.equal(cacheFileName(root, path.join(root, 'index.d.ts'), named), undefined);
      const hoisted = path.join('/opt', 'app', 'node_modules', 'msgpackr', 'dist', 'node.cjs');
      assert.equal(cacheFileName(root, hoisted, named), 'node_modules!msgpackr!dist!node.cjs');
      const nested = path.join(root, '..', 'node_modules', 'apache-arrow', 'node_modules', 'msgpackr', 'index.js');
      assert.equal(cacheFileName(root, nested, named), 'node_modules!msgpackr!index.js', 'the innermost package');
      const other = path.join('/opt', 'app', 'node_modules', 'lodash', 'index.js');
      assert.equal(cacheFileName(root, other, named), undefined);
      assert.equal(cacheFileName(root, path.join('/opt', 'app', 'server.js'), named), undefined, "the user's own");
    });
  });

  describe('the cache folder', () => {
    it('is made private (0700) when missing', () => {
      const folder = path.join(dir, 'cache', 'code-x');
      fs.chmodSync(dir, 0o700);
      assert.equal(isPrivateDir(folder), true);
      assert.equal(fs.statSync(folder).mode & 0o777, 0o700);
    });

    it('is refused when others may write to it or to the folder it is in', () => {
      fs.chmodSync(dir, 0o700);
      const open = path.join(dir, 'open');
      fs.mkdirSync(open, { mode: 0o700 });
      fs.chmodSync(open, 0o777);
      assert.equal(isPrivateDir(open), false, 'writable by others');
      assert.equal(isPrivateDir(path.join(open, 'code-x')), false, 'inside a folder others may write to');
      const file = path.join(dir, 'file');
      fs.writeFileSync(file, '');
      assert.equal(isPrivateDir(file), false, 'not a folder');
    });
  });

  describe('stale folders', () => {
    const node = `node${process.versions.node}-${process.arch}`;
    /** A cache folder as codeCacheDir names it, with one file in it. */
    const folder = (name: string): string => {
      const at = path.join(dir, name);
      fs.mkdirSync(at, { mode: 0o700 });
      fs.writeFileSync(path.join(at, 'main.js'), 'cached');
      return at;
    };

    it("removes this install's other trellis versions only: not other installs, Node versions or anything else", () => {
      const current = folder(`code-1.2.0-${node}-0000abcd`);
      folder(`code-1.1.0-${node}-0000abcd`);
      folder(`code-1.1.0-${node}-0000abcd-f0123abcd`);
      folder(`code-1.0.0-rc.1-node18.20.4-${process.arch}-0000abcd`);
      const kept = [
        path.basename(current),
        // The same version started with other options (codeCacheDir's -f suffix).
        path.basename(folder(`code-1.2.0-${node}-0000abcd-f0123abcd`)),
        path.basename(folder(`code-1.1.0-${node}-1111ffff`)),
        path.basename(folder(`code-1.2.0-node18.20.4-${process.arch}-0000abcd`)),
        path.basename(folder('code-1.1.0-not-ours-0000abcd')),
        path.basename(folder('unrelated')),
      ];
      // A link named as a stale folder is not followed, nor removed.
      const target = folder('target');
      fs.symlinkSync(target, path.join(dir, `code-0.9.0-${node}-0000abcd`));
      fs.writeFileSync(path.join(dir, `code-0.8.0-${node}-0000abcd`), 'a file');
      kept.push('target', `code-0.9.0-${node}-0000abcd`, `code-0.8.0-${node}-0000abcd`);

      assert.deepEqual(removeStaleCaches(current).sort(), [
        `code-1.0.0-rc.1-node18.20.4-${process.arch}-0000abcd`,
        `code-1.1.0-${node}-0000abcd`,
        `code-1.1.0-${node}-0000abcd-f0123abcd`,
      ]);
      assert.deepEqual(fs.readdirSync(dir).sort(), kept.sort());
      assert.deepEqual(fs.readdirSync(target), ['main.js']);
      assert.deepEqual(removeStaleCaches(path.join(dir, 'unrelated')), [], 'a folder not named by codeCacheDir');
    });
  });

  describe('loading modules through it', () => {
    let root = '';
    let cache = '';
    beforeEach(() => {
      root = path.join(dir, 'dist');
      cache = path.join(dir, 'cache');
      fs.mkdirSync(path.join(root, 'sub'), { recursive: true });
      fs.mkdirSync(cache, { mode: 0o700 });
      fs.writeFileSync(path.join(root, 'main.js'), "exports.value = require('./sub/two.js').value + 1;\n");
      fs.writeFileSync(path.join(root, 'sub', 'two.js'), 'exports.value = 40 + 1; /* v1 */\n');
    });

    /** Loads root/main.js in a new process with the cache installed; its value and the cache files after. */
    function load(
      env: NodeJS.ProcessEnv = {},
      main = path.join(root, 'main.js'),
      nodeOptions: string[] = [],
    ): { value: number; files: Record<string, number> } {
      const script = `
        const { installCodeCache } = require(${JSON.stringify(path.join(REPO_ROOT, 'src', 'code-cache'))});
        installCodeCache(${JSON.stringify(root)}, ${JSON.stringify(cache)}, ['dependency']);
        process.stdout.write(String(require(${JSON.stringify(main)}).value));
      `;
      const child = spawnSync(process.execPath, [...nodeOptions, ...TSX_ARGS, '-e', script], {
        cwd: REPO_ROOT,
        env: { ...process.env, ...env },
        encoding: 'utf8',
        timeout: 30_000,
      });
      assert.equal(child.status, 0, child.stderr);
      const files: Record<string, number> = {};
      for (const name of fs.readdirSync(cache)) files[name] = fs.statSync(path.join(cache, name)).mtimeMs;
      return { value: Number(child.stdout), files };
    }

    it('writes each module once, at the first exit, and later processes load from it', () => {
      const first = load();
      assert.equal(first.value, 42);
      assert.deepEqual(Object.keys(first.files).sort(), ['main.js', 'sub!two.js']);
      const second = load();
      assert.equal(second.value, 42);
      assert.deepEqual(second.files, first.files, 'accepted: nothing written again');
    });

    it("a process writing a new cache removes this install's older versions; a warm one does not look", () => {
      const node = `node${process.versions.node}-${process.arch}`;
      cache = path.join(dir, `code-2.0.0-${node}-0000abcd`);
      fs.mkdirSync(cache, { mode: 0o700 });
      const stale = path.join(dir, `code-1.0.0-${node}-0000abcd`);
      const otherInstall = path.join(dir, `code-1.0.0-${node}-1111ffff`);
      for (const folder of [stale, otherInstall]) {
        fs.mkdirSync(folder, { mode: 0o700 });
        fs.writeFileSync(path.join(folder, 'main.js'), 'cached');
      }
      // The install's package.json, beside root as beside dist/: this version is the one installed.
      fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ version: '2.0.0' }));
      assert.equal(load().value, 42);
      assert.equal(fs.existsSync(stale), false, 'the older version of this install is gone');
      assert.equal(fs.existsSync(otherInstall), true, 'another install keeps its cache');
      // Nothing new written: nothing is looked at (a folder made now stays).
      fs.mkdirSync(stale, { mode: 0o700 });
      assert.equal(load().value, 42);
      assert.equal(fs.existsSync(stale), true);
    });

    it('a process whose cache files could not be written counts none as new, and removes no folder', () => {
      const node = `node${process.versions.node}-${process.arch}`;
      cache = path.join(dir, `code-2.0.0-${node}-0000abcd`);
      fs.mkdirSync(cache, { mode: 0o700 });
      // A folder where each file would go: the rename over it fails (as a full disk would fail the write).
      for (const name of ['main.js', 'sub!two.js']) {
        fs.mkdirSync(path.join(cache, name));
        fs.writeFileSync(path.join(cache, name, 'in-the-way'), '');
      }
      const stale = path.join(dir, `code-1.0.0-${node}-0000abcd`);
      fs.mkdirSync(stale, { mode: 0o700 });
      fs.writeFileSync(path.join(stale, 'main.js'), 'cached');
      fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ version: '2.0.0' }));
      assert.equal(load().value, 42);
      assert.equal(fs.statSync(path.join(cache, 'main.js')).isDirectory(), true, 'nothing was written');
      assert.equal(fs.existsSync(stale), true, 'the older version keeps its cache: this one has none to replace it');
    });

    it('a process of a version no longer installed (upgraded under it) removes no folder', () => {
      const node = `node${process.versions.node}-${process.arch}`;
      cache = path.join(dir, `code-1.0.0-${node}-0000abcd`);
      fs.mkdirSync(cache, { mode: 0o700 });
      // Version 2.0.0 was installed while this 1.0.0 process ran; its processes use their folder.
      fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ version: '2.0.0' }));
      const installed = path.join(dir, `code-2.0.0-${node}-0000abcd`);
      fs.mkdirSync(installed, { mode: 0o700 });
      fs.writeFileSync(path.join(installed, 'main.js'), 'cached');
      assert.equal(load().value, 42);
      assert.ok(Object.keys(load().files).length > 0, 'it wrote its own cache');
      assert.deepEqual(fs.readdirSync(installed), ['main.js'], 'the installed version keeps its cache');
    });

    it('caches the modules of the packages named too, not those of others', () => {
      for (const name of ['dependency', 'other']) {
        fs.mkdirSync(path.join(dir, 'node_modules', name), { recursive: true });
        fs.writeFileSync(path.join(dir, 'node_modules', name, 'index.cjs'), 'exports.value = 20;\n');
      }
      const main = path.join(root, 'uses.js');
      fs.writeFileSync(
        main,
        "exports.value = require('../node_modules/dependency/index.cjs').value + " +
          "require('../node_modules/other/index.cjs').value + 2;\n",
      );
      const first = load({}, main);
      assert.equal(first.value, 42);
      assert.deepEqual(Object.keys(first.files).sort(), ['node_modules!dependency!index.cjs', 'uses.js']);
      // A package's modules hold what ran (refined by later processes), unless named whole as msgpackr is.
      const generation = (name: string) => fs.readFileSync(path.join(cache, name)).readUInt32LE(12);
      assert.equal(generation('node_modules!dependency!index.cjs'), 1);
      assert.equal(generation('uses.js'), 4);
      const second = load({}, main);
      assert.equal(second.value, 42);
      assert.deepEqual(second.files, first.files, 'accepted: nothing written again');
    });

    describe('a module with a function that only runs when asked', () => {
      beforeEach(() => {
        fs.writeFileSync(
          path.join(root, 'sub', 'two.js'),
          'exports.more = () => [1, 2, 3].map((x) => x * 2).reduce((a, b) => a + b);\n' +
            'exports.value = process.env.MORE ? 35 + exports.more() : 41;\n',
        );
      });
      // The header's last field (the loader checks the rest).
      const generation = () => fs.readFileSync(path.join(cache, 'sub!two.js')).readUInt32LE(12);
      const size = () => fs.statSync(path.join(cache, 'sub!two.js')).size;

      it('is cached whole by the first process, which did not run it: later processes add nothing', () => {
        const first = load();
        assert.equal(first.value, 41 + 1);
        assert.equal(generation(), 4, 'marked whole (past the refinements): no process looks at it again');
        const whole = size();
        const more = load({ MORE: '1' });
        assert.equal(more.value, 35 + 12 + 1);
        assert.equal(more.files['sub!two.js'], first.files['sub!two.js'], 'accepted, nothing to add: left');
        // What a first process started with --lazy (as V8 is by default) writes: only what it ran.
        fs.rmSync(path.join(cache, 'sub!two.js'));
        assert.equal(load({}, undefined, ['--lazy']).value, 42);
        assert.ok(size() < whole, `${size()} B with what ran, ${whole} B whole`);
      });

      it('by processes started with V8 options of laziness: written again by the next that compiled more', () => {
        assert.equal(load({}, undefined, ['--lazy']).value, 41 + 1);
        assert.equal(generation(), 1);
        assert.equal(load({ MORE: '1' }, undefined, ['--lazy']).value, 35 + 12 + 1);
        assert.equal(generation(), 2, 'holds more: written again');
        assert.equal(load({ MORE: '1' }, undefined, ['--lazy']).value, 48);
        assert.equal(generation(), 2, 'nothing new: left');
      });
    });

    it('runs a changed module of the same length as it is now, not as cached', () => {
      load();
      const two = path.join(root, 'sub', 'two.js');
      fs.writeFileSync(two, 'exports.value = 50 + 1; /* v2 */\n');
      assert.equal(load().value, 52);
      assert.equal(load().value, 52, 'and from the cache written for it');
    });

    it('replaces a corrupt file, and one V8 refuses (as from another V8), and loads the same', () => {
      const { files } = load();
      const mainFile = path.join(cache, 'main.js');
      const twoFile = path.join(cache, 'sub!two.js');
      fs.writeFileSync(mainFile, Buffer.alloc(200, 0xab));
      // Intact by our checks but not V8's data: what a cache from another V8 looks like to V8.
      writeCacheFile(twoFile, fs.readFileSync(path.join(root, 'sub', 'two.js'), 'utf8'), Buffer.alloc(200, 1));
      const after = load();
      assert.equal(after.value, 42);
      assert.notEqual(after.files['main.js'], files['main.js'], 'the corrupt one rewritten');
      assert.notEqual(after.files['sub!two.js'], files['sub!two.js'], 'the refused one rewritten');
      assert.equal(load().value, 42);
    });
  });
});
