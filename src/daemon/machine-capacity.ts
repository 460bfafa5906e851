/**
 * What this machine can hold right now, read from the kernel each time it is asked.
 *
 * `--size` is only what the user allows; three other things bound shared memory, and going past
 * any of them ends in the kernel's OOM killer (daemon and clients killed, every object lost)
 * rather than an error: the RAM left (MemAvailable in /proc/meminfo), the free space of the
 * tmpfs that holds the segments (a full one answers ENOSPC, but a tmpfs as large as RAM never
 * fills first), and a memory cgroup's limit (a container's; tmpfs pages count against the cgroup
 * of the process that fallocates them, the daemon's). This file only reads them; the memory
 * policy decides what they mean. A reading costs a few small reads of /proc and /sys (tens of
 * µs), so the pool takes one per new segment, never per blob.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ShmSpace {
  dir: string;
  /** Bytes an unprivileged file may still take (statfs f_bavail). */
  free: number;
  /** The file system's size. */
  size: number;
}

export interface CgroupMemory {
  /** The cgroup's folder, such as /sys/fs/cgroup/system.slice/x.service. */
  dir: string;
  limit: number;
  /** Bytes charged that the kernel cannot simply drop: usage less inactive file cache. */
  usage: number;
}

export interface CapacityReading {
  memTotal: number;
  /** Infinity when /proc/meminfo cannot be read. */
  memAvailable: number;
  /** The tmpfs that holds the segments; absent for memfds. */
  shm?: ShmSpace;
  /** The limited cgroup with the least room, of this process's and its ancestors; absent when none. */
  cgroup?: CgroupMemory;
}

export interface CapacityProbe {
  read(): CapacityReading;
}

/** cgroup v1 writes "no limit" as the largest page-aligned count; anything this large is none. */
const UNLIMITED = 2 ** 60;

interface CgroupFiles {
  limit: string;
  usage: string;
  /** The memory.stat key of inactive file cache (hierarchical in v1). */
  inactiveFile: string;
}

const V2_FILES: CgroupFiles = { limit: 'memory.max', usage: 'memory.current', inactiveFile: 'inactive_file' };
const V1_FILES: CgroupFiles = {
  limit: 'memory.limit_in_bytes',
  usage: 'memory.usage_in_bytes',
  inactiveFile: 'total_inactive_file',
};

/** Where a cgroup hierarchy with the memory controller is mounted. */
interface MemoryHierarchy {
  version: 1 | 2;
  mountPoint: string;
  /** The cgroup the mount shows (not '/' in a container without a cgroup namespace). */
  mountRoot: string;
}

export class MachineCapacity implements CapacityProbe {
  private readonly hierarchies: MemoryHierarchy[];

  /** `shmDir`: the tmpfs folder that holds the segments ('' for memfds, which no tmpfs bounds). */
  constructor(private readonly shmDir: string) {
    // Mounts are read once; which cgroup this process is in is read each time (it can be moved).
    this.hierarchies = memoryHierarchies(readText('/proc/self/mountinfo') ?? '');
  }

  read(): CapacityReading {
    const meminfo = readText('/proc/meminfo') ?? '';
    return {
      memTotal: meminfoBytes(meminfo, 'MemTotal'),
      memAvailable: meminfoBytes(meminfo, 'MemAvailable'),
      shm: this.shmDir === '' ? undefined : shmSpace(this.shmDir),
      cgroup: this.tightestCgroup(),
    };
  }

  private tightestCgroup(): CgroupMemory | undefined {
    const membership = readText('/proc/self/cgroup') ?? '';
    let tightest: CgroupMemory | undefined;
    for (const dir of this.cgroupChain(membership)) {
      const found = cgroupMemory(dir.dir, dir.files);
      if (found && (!tightest || found.limit - found.usage < tightest.limit - tightest.usage)) tightest = found;
    }
    return tightest;
  }

  /** This process's memory cgroup folder and its ancestors up to the mount, with their file names. */
  private cgroupChain(membership: string): { dir: string; files: CgroupFiles }[] {
    // A v1 memory hierarchy, where there is one, is where the memory controller lives.
    const ordered = [...this.hierarchies].sort((a, b) => a.version - b.version);
    for (const hierarchy of ordered) {
      const cgroup = cgroupPath(membership, hierarchy.version);
      if (cgroup === undefined) continue;
      const relative = cgroup.startsWith(hierarchy.mountRoot) ? cgroup.slice(hierarchy.mountRoot.length) : cgroup;
      let dir = path.join(hierarchy.mountPoint, relative);
      // In a container the path may name a cgroup outside what is mounted: the mount is its own.
      if (!fs.existsSync(dir)) dir = hierarchy.mountPoint;
      const files = hierarchy.version === 1 ? V1_FILES : V2_FILES;
      const chain: { dir: string; files: CgroupFiles }[] = [];
      for (;;) {
        chain.push({ dir, files });
        if (dir === hierarchy.mountPoint || !dir.startsWith(hierarchy.mountPoint)) break;
        dir = path.dirname(dir);
      }
      return chain;
    }
    return [];
  }
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'latin1');
  } catch {
    return undefined;
  }
}

function meminfoBytes(meminfo: string, key: string): number {
  const match = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(meminfo);
  return match ? Number(match[1]) * 1024 : Infinity;
}

function shmSpace(dir: string): ShmSpace | undefined {
  try {
    const stats = fs.statfsSync(dir);
    return { dir, free: stats.bavail * stats.bsize, size: stats.blocks * stats.bsize };
  } catch {
    // A folder that cannot be read fails the segment itself, with its own message.
    return undefined;
  }
}

/** mountinfo fields: id parent major:minor root mountpoint options ... - fstype source superoptions. */
export function memoryHierarchies(mountinfo: string): MemoryHierarchy[] {
  const found: MemoryHierarchy[] = [];
  for (const line of mountinfo.split('\n')) {
    const [before, after] = line.split(' - ');
    if (after === undefined) continue;
    const fields = before.split(' ');
    const [fstype, , superOptions = ''] = after.split(' ');
    const mountRoot = unescapeMountPath(fields[3]);
    const mountPoint = unescapeMountPath(fields[4]);
    if (fstype === 'cgroup2') found.push({ version: 2, mountPoint, mountRoot });
    else if (fstype === 'cgroup' && superOptions.split(',').includes('memory')) {
      found.push({ version: 1, mountPoint, mountRoot });
    }
  }
  return found;
}

function unescapeMountPath(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** The cgroup path in /proc/self/cgroup: "0::/path" for v2, "N:...,memory,...:/path" for v1. */
function cgroupPath(membership: string, version: 1 | 2): string | undefined {
  for (const line of membership.split('\n')) {
    const match = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    if (version === 2 && match[1] === '0' && match[2] === '') return match[3];
    if (version === 1 && match[2].split(',').includes('memory')) return match[3];
  }
  return undefined;
}

function cgroupMemory(dir: string, files: CgroupFiles): CgroupMemory | undefined {
  const limitText = readText(path.join(dir, files.limit))?.trim();
  if (limitText === undefined || limitText === 'max') return undefined;
  const limit = Number(limitText);
  if (!Number.isFinite(limit) || limit >= UNLIMITED) return undefined;
  const current = Number(readText(path.join(dir, files.usage))?.trim() ?? NaN);
  if (!Number.isFinite(current)) return undefined;
  // Inactive file cache is charged but the kernel drops it before it kills anything.
  const stat = readText(path.join(dir, 'memory.stat')) ?? '';
  const inactive = new RegExp(`^${files.inactiveFile} (\\d+)$`, 'm').exec(stat);
  const usage = Math.max(0, current - (inactive ? Number(inactive[1]) : 0));
  return { dir, limit, usage };
}
