/**
 * A V8 code cache for trellis's own compiled modules (the .js files of dist/) and those of the
 * packages on its request path it loads (CACHED_PACKAGES), so that a fresh process does not
 * compile them again. V8 compiles a function when it is first called; a process
 * whose first act is a get compiles the whole request path inside that get. Cached data made
 * after a process has run holds the bytecode of every function it compiled, and a later process
 * that loads it compiles none of them: a fresh reader's first getBlob costs about a third less CPU,
 * a first DataFrame get about a quarter less (docs/troubleshooting.md).
 *
 * Node 22 has module.enableCompileCache() for every module: where it exists, nothing here runs
 * (a user enables Node's). Neither does it under tsx (src/ is .ts), nor with TRELLIS_CODE_CACHE=0.
 *
 * Where: $TRELLIS_CODE_CACHE_DIR, else $XDG_CACHE_HOME/trellis, else ~/.cache/trellis; in it one
 * folder per trellis version, Node version and architecture. The folder must belong to this user
 * and be writable by no one else, or the cache is not used: cached data is code this process runs.
 *
 * Trust: V8 takes cached data for a script of the same length, V8 version and flags; it does not
 * compare the source text. So every file records the CRC-32 of the source it was made from and of
 * its own bytes, and a file that does not match (another build of the same length, a torn or
 * corrupt write) is ignored and replaced; so is one V8 refuses.
 *
 * Writing: at exit, each module that had no usable cache gets one (written to a temporary name,
 * then renamed over, so readers never see half a file). Processes run different functions (a
 * writer's put path, a reader's get path): trellis's own modules and WHOLE_PACKAGES' are cached
 * whole, every function compiled again eagerly (eagerCachedData), so that the first reader after
 * a writer does not compile its get path (`npm run bench -- cold`, run 1: a first DataFrame get
 * 1.59 ms before, ~0.4 ms now, as later runs). That costs the first process's exit ~9 ms more
 * (~24 -> ~33 ms with apache-arrow loaded, ~200 modules), once, and a process loading the cache
 * ~0.3-0.5 ms more (2.2 -> 2.5 ms against a cache readers refined, 2.3 -> 2.7 ms against a
 * writer's), which its connect() gets back (reader CPU 4.17 -> 3.70 ms, cold --ab). Such a file
 * is never looked at again. Other modules (and all where eagerCachedData makes nothing) hold what
 * the process ran, and the first REFINEMENTS processes that exit after loading such a module from
 * the cache write it again when they hold more of it; then it stays, and later processes pay
 * nothing at exit (making cached data costs ~0.3 ms a module). A process killed by a signal
 * writes none; the next one that exits does.
 * A process that writes a new file also removes the folders of this install's other trellis
 * versions (removeStaleCaches), if its version is still the one installed.
 */
import * as fs from 'node:fs';
import Module from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { crc32 } from 'node:zlib';

const MAGIC = 0x31435254; // 'TRC1', little-endian
/** magic, CRC-32 of the source, CRC-32 of the data, generation: uint32 LE each. */
const HEADER_BYTES = 16;
/** How many processes after the first may write a module's cache again (see above). */
const REFINEMENTS = 3;
/** The generation of a file holding every function of its module: no process writes it again. */
const WHOLE = REFINEMENTS + 1;

export const CODE_CACHE_ENV = 'TRELLIS_CODE_CACHE';
export const CODE_CACHE_DIR_ENV = 'TRELLIS_CODE_CACHE_DIR';

/** The command-line options this process was started with, where V8's flags are (they may be in either). */
export function startFlags(): string[] {
  const fromEnvironment = process.env.NODE_OPTIONS?.trim();
  return fromEnvironment ? [...process.execArgv, fromEnvironment] : [...process.execArgv];
}

/**
 * The cache folder for this trellis version, Node and architecture, and the package folder
 * (`root`, by its CRC-32: two installs of one version do not take turns rewriting one cache).
 * Processes started with options (`flags`, by their CRC-32) get a folder per set of options:
 * V8 refuses cached data made under other flags (--max-old-space-size, --expose-gc, ...), so
 * two kinds of process sharing a folder would each replace the other's cache at every exit and
 * load none.
 */
export function codeCacheDir(version: string, root: string, flags: readonly string[] = startFlags()): string {
  const base =
    process.env[CODE_CACHE_DIR_ENV] ||
    path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'trellis');
  const where = crc32(root).toString(16).padStart(8, '0');
  const options = flags.length === 0 ? '' : `-f${crc32(JSON.stringify(flags)).toString(16).padStart(8, '0')}`;
  return path.join(base, `code-${version}-node${process.versions.node}-${process.arch}-${where}${options}`);
}

/** codeCacheDir's folder name: its trellis version, Node version, architecture, install and options. */
const FOLDER_PATTERN = /^code-(.+)-node(\d+\.\d+\.\d+)-([a-z0-9_]+)-([0-9a-f]{8})(?:-f[0-9a-f]{8})?$/;

/**
 * Removes the cache folders of other trellis versions of `dir`'s install, and returns their
 * names. An install holds one version at a time, so their modules are gone: nothing would read
 * them again, and each upgrade would leave one more folder behind. Folders of other installs, and
 * of this version under another Node, are kept (they may be in use). Only real folders named as
 * codeCacheDir names them and owned by this user go; `dir`'s parent is checked private
 * (isPrivateDir) before anything is written there. Best effort: what cannot be removed stays.
 */
export function removeStaleCaches(dir: string): string[] {
  const own = FOLDER_PATTERN.exec(path.basename(dir));
  if (!own) return [];
  const [, version, , , install] = own;
  const base = path.dirname(dir);
  const uid = process.getuid?.();
  const removed: string[] = [];
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(base, { withFileTypes: true });
  } catch {
    return removed;
  }
  for (const entry of entries) {
    // A symbolic link is no Dirent directory: never followed.
    const other = entry.isDirectory() ? FOLDER_PATTERN.exec(entry.name) : null;
    if (!other || other[4] !== install || other[1] === version) continue;
    const folder = path.join(base, entry.name);
    try {
      if (uid !== undefined && fs.lstatSync(folder).uid !== uid) continue;
      fs.rmSync(folder, { recursive: true, force: true });
      removed.push(entry.name);
    } catch {
      // In use by a process of that version that is writing it now, or not ours to remove: left.
    }
  }
  return removed;
}

/**
 * Whether `dir` (codeCacheDir's folder) is of the version the install holds now: its package.json,
 * beside `root` (dist/) as src/version.ts reads it. False when it cannot be read.
 */
function isInstalledVersion(root: string, dir: string): boolean {
  const own = FOLDER_PATTERN.exec(path.basename(dir));
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(root, '..', 'package.json'), 'utf8')) as {
      version?: unknown;
    };
    return own !== null && manifest.version === own[1];
  } catch {
    return false;
  }
}

export interface CacheEntry {
  data: Buffer;
  /** 1 for the first write, one more at each rewrite. */
  generation: number;
}

/** The cached data in `file` if it was made from `source` and is intact, else undefined. */
export function readCacheFile(file: string, source: string): CacheEntry | undefined {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    return undefined;
  }
  if (bytes.length <= HEADER_BYTES || bytes.readUInt32LE(0) !== MAGIC) return undefined;
  const data = bytes.subarray(HEADER_BYTES);
  if (bytes.readUInt32LE(4) !== crc32(source) || bytes.readUInt32LE(8) !== crc32(data)) return undefined;
  return { data, generation: bytes.readUInt32LE(12) };
}

/**
 * Writes `data` for `source` to `file` atomically; best effort (a cache that cannot be written is
 * not used). Returns whether it was written.
 */
export function writeCacheFile(file: string, source: string, data: Buffer, generation = 1): boolean {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt32LE(crc32(source), 4);
  header.writeUInt32LE(crc32(data), 8);
  header.writeUInt32LE(generation, 12);
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(temporary, Buffer.concat([header, data]), { mode: 0o600 });
    fs.renameSync(temporary, file);
    return true;
  } catch {
    fs.rmSync(temporary, { force: true });
    return false;
  }
}

/**
 * Makes `dir` (mode 0700) if missing; true when it belongs to this user and no one else can
 * write to it or to the folder it is in, so no one else can have put a file there.
 */
export function isPrivateDir(dir: string): boolean {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const uid = process.getuid?.();
    for (const folder of [dir, path.dirname(dir)]) {
      const stat = fs.statSync(folder);
      if (!stat.isDirectory() || (uid !== undefined && stat.uid !== uid) || (stat.mode & 0o022) !== 0) return false;
    }
    return true;
  } catch {
    return false;
  }
}

interface CompilingModule {
  exports: unknown;
  require(id: string): unknown;
}

interface ModuleInternals {
  prototype: { _compile(this: CompilingModule, content: string, filename: string): unknown };
  _resolveFilename(request: string, parent: unknown, isMain: boolean, options?: unknown): string;
  _cache: unknown;
  _extensions: unknown;
}

/**
 * The packages on a client's request path whose modules trellis loads (or loads when first
 * needed) and caches with its own: msgpackr frames every request (its first decode of a reply
 * cost a fresh reader ~0.35 ms of a ~1.15 ms first getBlob's CPU before it was cached), and
 * apache-arrow with its flatbuffers when trellis loads them at the first DataFrame get. A package
 * the user loaded before trellis was compiled already; its modules are not seen here.
 */
export const CACHED_PACKAGES: readonly string[] = ['msgpackr', 'apache-arrow', 'flatbuffers', 'tslib'];

/**
 * Those of CACHED_PACKAGES cached whole (eagerCachedData), as trellis's own modules are. Not
 * apache-arrow: whole, its cache is 1.2 MB against 0.6 MB, which every process would load
 * (~3 ms more per process for trellis and arrow loaded whole, on this project's loaded machine),
 * and the parts a first get runs are those a writer ran to build its table.
 */
export const WHOLE_PACKAGES: readonly string[] = ['msgpackr'];

/**
 * The cache file's name for `filename`, or undefined when it is not cached: a .js file under
 * `root`, or a .js/.cjs file of one of `packages` (in whichever node_modules it is installed).
 */
export function cacheFileName(root: string, filename: string, packages: readonly string[]): string | undefined {
  if (filename.startsWith(root + path.sep)) {
    return filename.endsWith('.js') ? path.relative(root, filename).replaceAll(path.sep, '!') : undefined;
  }
  if (!filename.endsWith('.js') && !filename.endsWith('.cjs')) return undefined;
  for (const name of packages) {
    const folder = `${path.sep}node_modules${path.sep}${name}${path.sep}`;
    const at = filename.lastIndexOf(folder);
    if (at >= 0) return `node_modules!${name}!${filename.slice(at + folder.length).replaceAll(path.sep, '!')}`;
  }
  return undefined;
}

/** V8's --lazy or --no-lazy (or --no_lazy) in a command line; not its --lazy-* flags. */
const LAZY_FLAG = /(^|\s)--(no[-_])?lazy(=\S*)?(\s|$)/;

/**
 * Cached data holding every function of each module, not only those this process ran, by
 * source: each is compiled again with V8's --no-lazy, under another name so that V8's own
 * compilation cache does not hand back the script that ran. The flag is back before the data is
 * made (V8 refuses data made under other flags). Empty when this process was started with
 * either flag: it is not ours to change.
 */
function eagerCachedData(modules: ReadonlyArray<{ source: string }>): Map<string, Buffer> {
  const eager = new Map<string, Buffer>();
  if (modules.length === 0 || startFlags().some((flag) => LAZY_FLAG.test(flag))) return eager;
  const scripts: Array<[string, vm.Script]> = [];
  v8.setFlagsFromString('--no-lazy');
  try {
    for (const { source } of modules)
      scripts.push([source, new vm.Script(source, { filename: `eager:${scripts.length}` })]);
  } catch {
    // A module that compiled lazily but not eagerly (none known): its data holds what ran.
  } finally {
    v8.setFlagsFromString('--lazy');
  }
  for (const [source, script] of scripts) eager.set(source, script.createCachedData());
  return eager;
}

/**
 * Compiles the .js files under `root` and the modules of `packages` (cacheFileName) with cached
 * data from `dir` and writes what is missing at exit. Other modules compile as before, through
 * whatever _compile was in place.
 */
export function installCodeCache(
  root: string,
  dir: string,
  packages: readonly string[] = CACHED_PACKAGES,
  wholePackages: readonly string[] = WHOLE_PACKAGES,
): void {
  const internals = Module as unknown as ModuleInternals;
  const previous = internals.prototype._compile;
  const toWrite: Array<{ script: vm.Script; file: string; source: string; whole: boolean; loaded?: CacheEntry }> = [];
  internals.prototype._compile = function compileWithCache(this: CompilingModule, content, filename) {
    const name = cacheFileName(root, filename, packages);
    if (name === undefined) return previous.call(this, content, filename);
    const file = path.join(dir, name);
    const source = Module.wrap(content);
    const loaded = readCacheFile(file, source);
    const script = new vm.Script(source, { filename, cachedData: loaded?.data });
    const whole = !name.startsWith('node_modules!') || wholePackages.some((p) => name.startsWith(`node_modules!${p}!`));
    if (loaded === undefined || script.cachedDataRejected) toWrite.push({ script, file, source, whole });
    else if (loaded.generation <= REFINEMENTS) toWrite.push({ script, file, source, whole, loaded });
    // What Node's own loader hands a CommonJS module.
    const moduleRequire = Object.assign((id: string) => this.require(id), {
      resolve: (request: string, options?: unknown) => internals._resolveFilename(request, this, false, options),
      main: require.main,
      cache: internals._cache,
      extensions: internals._extensions,
    });
    const wrapper = script.runInThisContext({ displayErrors: true }) as (...args: unknown[]) => unknown;
    return wrapper.call(this.exports, this.exports, moduleRequire, this, filename, path.dirname(filename));
  };
  process.once('exit', () => {
    let wroteNew = false;
    const eager = eagerCachedData(toWrite.filter((entry) => entry.whole && !entry.loaded));
    for (const { script, file, source, loaded } of toWrite) {
      const wholeData = eager.get(source);
      const data = wholeData ?? script.createCachedData();
      // Loaded from the cache: written again only if this process compiled more of the module.
      // Only a file written counts: a process that wrote none (a full disk) leaves the older
      // versions' caches, having none to take their place.
      if (!loaded) {
        if (writeCacheFile(file, source, data, wholeData ? WHOLE : 1)) wroteNew = true;
      } else if (data.length > loaded.data.length) writeCacheFile(file, source, data, loaded.generation + 1);
    }
    // A new cache (the first run of a version, typically): the older versions' folders go. Not
    // at every exit, so that a warm process pays nothing for it; and not by a process whose
    // version was replaced under it (an upgrade while it ran), which would take the new one's.
    if (wroteNew && isInstalledVersion(root, dir)) removeStaleCaches(dir);
  });
}

/**
 * Installs the cache for the package's compiled modules when this file runs from dist/ on a Node
 * without module.enableCompileCache, unless TRELLIS_CODE_CACHE=0 or the folder is not private.
 */
export function useCodeCache(version: string): boolean {
  if (process.env[CODE_CACHE_ENV] === '0' || !__filename.endsWith('.js')) return false;
  if (typeof (Module as { enableCompileCache?: unknown }).enableCompileCache === 'function') return false;
  const root = path.dirname(__filename);
  const dir = codeCacheDir(version, root);
  if (!isPrivateDir(dir)) return false;
  installCodeCache(root, dir);
  return true;
}
