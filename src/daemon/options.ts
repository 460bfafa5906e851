/** The daemon's options, their defaults, and how the command line spells them. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TrellisError } from '../errors';
import { DEFAULT_MAX_FRAME_BYTES } from '../protocol/framing';
import { MAX_INSTANCE_ID } from '../protocol/ids';
import { parseEndpoint } from '../protocol/rpc-socket';
import { defaultSocketPath } from '../protocol/socket-path';
import { checkLogFormat, checkLogLevel, defaultLogLevel, type LogFormat, type LogLevel } from './log';
import { DEFAULT_IDLE_RELEASE_MS } from './memory-policy';
import { DEFAULT_PUT_ARENA_BYTES } from './put-rings';
import { DEFAULT_LEASE_TTL_SECONDS } from './metadata/membership';
import { DEFAULT_KEEP_VERSIONS } from './name-history';
import { DEFAULT_READ_INDEX_SLOTS } from './read-index';
import { parseSize } from './sizes';

export interface DaemonOptions {
  /** Socket path; default $TRELLIS_SOCKET, then the per-user default. */
  socket?: string;
  /** Shared-memory limit: bytes or a string such as '2GiB'. Default 2 GiB. */
  size?: number | string;
  /** Socket file mode; default 0o600 (owner only). */
  socketMode?: number;
  /** Largest frame accepted from a client. */
  maxFrameBytes?: number;
  /** How long an empty segment is kept for reuse. */
  idleReleaseMs?: number;
  /** Cluster-unique instance id; 0 without a cluster. */
  instanceId?: number;
  /** tmpfs folder that holds the (unnamed) segments; default /dev/shm, '' for memfds. */
  shmDir?: string;
  /** Slots of the read index (docs/read-index.md), a power of two; 0 keeps none. Default 65536. */
  readIndexSlots?: number;
  /**
   * Bytes of each arena a local client's small puts are written into with no round trip
   * (docs/put-ring.md), a multiple of 16 KiB; 0 turns put rings off. Default 1 MiB, less in a
   * small store (at most 1/256 of --size; none when that is under 16 KiB).
   */
  putRingBytes?: number;
  /**
   * A spare segment of this size (bytes or a string such as '1GiB'; rounded up to 2 MiB) kept
   * reserved with its pages faulted in, for the first blob that needs a new segment up to that
   * size; replaced in the background once taken. Counts toward `size`; given back under memory
   * pressure. Default 0: none.
   */
  spareSegment?: number | string;
  /** Unread bytes a stream may hold before its writer waits; default a quarter of size, at most 256 MiB. */
  streamBufferBytes?: number;
  /** TCP port for RPC (remote clients, migrate between daemons); 0 picks a free one. Default: none. */
  rpcPort?: number;
  /** Address the RPC port binds to; default 127.0.0.1, loopback only. */
  rpcHost?: string;
  /**
   * Shared secret every RPC connection must present, and this daemon presents to its peers.
   * Default $TRELLIS_RPC_TOKEN.
   */
  rpcToken?: string;
  /** instance id -> host:port of other daemons' RPC ports, for migrate without a cluster view. */
  rpcPeers?: Record<number, string>;
  /** How long a peer daemon may take to answer one request before it counts as gone (ms). */
  rpcTimeoutMs?: number;
  /** PEM certificate file: serve RPC over TLS (with rpcTlsKey), and present it to peers with rpcTlsCa. */
  rpcTlsCert?: string;
  /** PEM private key file of rpcTlsCert. */
  rpcTlsKey?: string;
  /** PEM CA file: RPC clients must show a certificate it signed (mutual TLS), and so must peers this daemon reaches. */
  rpcTlsCa?: string;
  /** etcd client URLs (a comma-separated string or a list): join that cluster. Default: none, run alone. */
  etcd?: string | string[];
  /** Keys live under `<prefix>/`; daemons with the same etcd and prefix are one cluster. Default 'trellis'. */
  etcdPrefix?: string;
  /** Seconds a dead daemon still looks alive (whole seconds, at least 2). Default 10. */
  leaseTtl?: number;
  /**
   * Where sealed blobs go under memory pressure instead of OutOfMemory.
   * Default: DATA_DIR/spill with dataDir, else off.
   */
  spillDir?: string;
  /** Makes persist durable: objects, names and ttls are kept here across restarts. Default: none. */
  dataDir?: string;
  /** Versions kept per name (at least 1); older ones are dropped. Default 10. */
  keepVersions?: number;
  /** In a cluster: names of other daemons' objects kept (and watched) after a read, at most. Default 10,000. */
  nameCache?: number;
  /** In a cluster: other daemons' object records kept after a read, at most. Default 10,000. */
  recordCache?: number;
  /** TCP port for the dashboard, /metrics and /api (0 picks a free one). Default: none. */
  httpPort?: number;
  /** Address the HTTP port binds to; default 127.0.0.1, loopback only. */
  httpHost?: string;
  /** debug|info|warn|error; default $TRELLIS_LOG, then info. */
  logLevel?: LogLevel;
  /** text (for people) or json (one object a line). Default text. */
  logFormat?: LogFormat;
}

export interface ResolvedOptions {
  socket: string;
  size: number;
  socketMode: number;
  maxFrameBytes: number;
  idleReleaseMs: number;
  instanceId: number;
  shmDir: string;
  readIndexSlots: number;
  putRingBytes: number;
  spareSegmentBytes: number;
  streamBufferBytes?: number;
  rpcPort?: number;
  rpcHost: string;
  rpcToken?: string;
  rpcPeers: Map<number, string>;
  rpcTimeoutMs: number;
  /** Paths, checked to come as a pair (cert and key), with the CA only beside them. */
  rpcTlsCert?: string;
  rpcTlsKey?: string;
  rpcTlsCa?: string;
  /** Empty: no cluster. */
  etcd: string[];
  etcdPrefix?: string;
  leaseTtlSeconds: number;
  spillDir?: string;
  dataDir?: string;
  keepVersions: number;
  nameCache: number;
  recordCache: number;
  httpPort?: number;
  httpHost: string;
  logLevel: LogLevel;
  logFormat: LogFormat;
}

export const DEFAULT_SIZE = '2GiB';
export const DEFAULT_SOCKET_MODE = 0o600;
export const DEFAULT_SHM_DIR = '/dev/shm';

export function resolveOptions(options: DaemonOptions = {}): ResolvedOptions {
  const socketMode = options.socketMode ?? DEFAULT_SOCKET_MODE;
  if (!Number.isInteger(socketMode) || socketMode < 0 || socketMode > 0o777) {
    throw new TrellisError(
      'InvalidArgument',
      `socket mode must be an octal permission such as 0600, got ${socketMode}`,
    );
  }
  return {
    socket: options.socket ?? defaultSocketPath(),
    size: parseSize(options.size ?? DEFAULT_SIZE),
    socketMode,
    maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    idleReleaseMs: options.idleReleaseMs ?? DEFAULT_IDLE_RELEASE_MS,
    instanceId: options.instanceId ?? 0,
    shmDir: options.shmDir ?? (fs.existsSync(DEFAULT_SHM_DIR) ? DEFAULT_SHM_DIR : ''),
    readIndexSlots: checkReadIndexSlots(options.readIndexSlots ?? DEFAULT_READ_INDEX_SLOTS),
    putRingBytes: checkPutRingBytes(
      options.putRingBytes ?? defaultPutRingBytes(parseSize(options.size ?? DEFAULT_SIZE)),
    ),
    spareSegmentBytes: [undefined, 0, '0'].includes(options.spareSegment) ? 0 : parseSize(options.spareSegment!),
    streamBufferBytes: options.streamBufferBytes === undefined ? undefined : parseSize(options.streamBufferBytes),
    rpcPort: options.rpcPort === undefined ? undefined : checkPort(options.rpcPort),
    rpcHost: options.rpcHost ?? DEFAULT_RPC_HOST,
    rpcToken: options.rpcToken ?? (process.env.TRELLIS_RPC_TOKEN || undefined),
    rpcPeers: checkPeers(options.rpcPeers ?? {}),
    rpcTimeoutMs: options.rpcTimeoutMs ?? DEFAULT_RPC_TIMEOUT_MS,
    ...checkTlsFiles(options),
    etcd: (typeof options.etcd === 'string' ? options.etcd.split(',') : (options.etcd ?? []))
      .map((url) => url.trim())
      .filter((url) => url !== ''),
    etcdPrefix: options.etcdPrefix,
    leaseTtlSeconds: options.leaseTtl ?? DEFAULT_LEASE_TTL_SECONDS,
    spillDir: options.spillDir ?? (options.dataDir === undefined ? undefined : path.join(options.dataDir, 'spill')),
    dataDir: options.dataDir,
    keepVersions: checkKeepVersions(options.keepVersions ?? DEFAULT_KEEP_VERSIONS),
    nameCache: checkCacheSize('--name-cache', options.nameCache ?? DEFAULT_NAME_CACHE),
    recordCache: checkCacheSize('--record-cache', options.recordCache ?? DEFAULT_RECORD_CACHE),
    httpPort: options.httpPort === undefined ? undefined : checkPort(options.httpPort, '--http-port'),
    httpHost: options.httpHost ?? DEFAULT_HTTP_HOST,
    logLevel: options.logLevel === undefined ? defaultLogLevel() : checkLogLevel('--log-level', options.logLevel),
    logFormat: options.logFormat === undefined ? 'text' : checkLogFormat('--log-format', options.logFormat),
  };
}

export const DEFAULT_RPC_HOST = '127.0.0.1';
export const DEFAULT_RPC_TIMEOUT_MS = 15_000;
export const DEFAULT_HTTP_HOST = '127.0.0.1';

/** As cluster/name-watches.ts and cluster/remote-records.ts (not imported: they load etcd3). */
export const DEFAULT_NAME_CACHE = 10_000;
export const DEFAULT_RECORD_CACHE = 10_000;

function checkCacheSize(flag: string, size: number): number {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new TrellisError('InvalidArgument', `${flag} must be a whole number of entries (0 or more), got ${size}`);
  }
  return size;
}

function checkKeepVersions(keep: number): number {
  if (!Number.isSafeInteger(keep) || keep < 1) {
    throw new TrellisError('InvalidArgument', `--keep-versions must be an integer of 1 or more, got ${keep}`);
  }
  return keep;
}

function checkPort(port: number, flag = '--rpc-port'): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new TrellisError('InvalidArgument', `${flag} must be 0 to 65535, got ${port}`);
  return port;
}

function checkTlsFiles(options: DaemonOptions): Pick<ResolvedOptions, 'rpcTlsCert' | 'rpcTlsKey' | 'rpcTlsCa'> {
  const { rpcTlsCert, rpcTlsKey, rpcTlsCa } = options;
  if ((rpcTlsCert === undefined) !== (rpcTlsKey === undefined)) {
    const given = rpcTlsCert === undefined ? '--rpc-tls-key' : '--rpc-tls-cert';
    throw new TrellisError('InvalidArgument', `--rpc-tls-cert and --rpc-tls-key come together; got only ${given}`);
  }
  if (rpcTlsCa !== undefined && rpcTlsCert === undefined) {
    const message = `--rpc-tls-ca ${rpcTlsCa} needs --rpc-tls-cert and --rpc-tls-key: mutual TLS is TLS first`;
    throw new TrellisError('InvalidArgument', message);
  }
  return { rpcTlsCert, rpcTlsKey, rpcTlsCa };
}

function checkPeers(peers: Record<number, string>): Map<number, string> {
  const checked = new Map<number, string>();
  for (const [id, endpoint] of Object.entries(peers)) {
    const instanceId = Number(id);
    if (!Number.isInteger(instanceId) || instanceId < 0 || instanceId > MAX_INSTANCE_ID) {
      throw new TrellisError('InvalidArgument', `--rpc-peer: instance id ${id} is outside 0..${MAX_INSTANCE_ID}`);
    }
    parseEndpoint(endpoint);
    checked.set(instanceId, endpoint);
  }
  return checked;
}

export const USAGE = `usage: trellisd [options]

  --socket PATH        UNIX socket to serve (default: $TRELLIS_SOCKET, then a per-user path)
  --socket-mode MODE   socket file permissions, octal (default 0600: this user only)
  --size SIZE          shared memory limit: 512MiB, 2GiB, 1G or bytes (default ${DEFAULT_SIZE}); a ceiling:
                       OutOfMemory comes sooner when RAM, the shm dir or a cgroup holds less
  --stream-buffer SIZE unread bytes a stream holds before its writer waits (default size/4, max 256MiB)
  --shm-dir DIR        tmpfs that holds the segments, as unnamed files (default ${DEFAULT_SHM_DIR})
  --read-index-slots N slots of the index clients read small objects from without a round trip
                       (a power of two; 0: none; default 65536)
  --put-ring-bytes N   bytes of each arena a client's small puts are written into with no round trip
                       (a multiple of 16KiB; 0: none; default 1MiB, at most size/256)
  --spare-segment SIZE keep a segment of SIZE reserved and faulted in for the first blob that needs a new
                       segment up to SIZE, replaced once taken; counts toward --size (0: none; default 0)
  --rpc-port N         serve RPC on this TCP port (0 picks one): remote clients, migrate (default: off)
  --rpc-host HOST      address the RPC port binds to (default 127.0.0.1: this machine only)
  --rpc-token TOKEN    secret every RPC connection must present (default $TRELLIS_RPC_TOKEN)
  --rpc-peer ID=H:P    another daemon's RPC endpoint, for migrate without a cluster (repeatable)
  --rpc-timeout MS     how long a peer daemon may take to answer before it counts as gone (default 15000)
  --rpc-tls-cert FILE  serve RPC over TLS with this PEM certificate (and --rpc-tls-key); peers are then
                       reached over TLS too (default: plain TCP)
  --rpc-tls-key FILE   the PEM private key of --rpc-tls-cert
  --rpc-tls-ca FILE    mutual TLS: RPC clients must present a certificate this PEM CA signed; peers are
                       checked against it and shown --rpc-tls-cert (default: Node's trusted CAs, no client cert)
  --instance-id N      this daemon's instance id without a cluster (default 0)
  --etcd URL[,URL]     join the cluster kept in this etcd, such as http://127.0.0.1:2379 (default: run alone)
  --etcd-prefix P      etcd key prefix: same etcd and prefix, same cluster (default trellis)
  --lease-ttl S        seconds a dead daemon still looks alive to the others, at least 2 (default ${DEFAULT_LEASE_TTL_SECONDS})
  --data-dir DIR       make persist durable: objects, names and ttls kept here across restarts (default: none)
  --keep-versions N    versions kept per name, older ones dropped (default ${DEFAULT_KEEP_VERSIONS})
  --name-cache N       in a cluster: other daemons' names kept and watched after a read, at most
                       (default ${DEFAULT_NAME_CACHE})
  --record-cache N     in a cluster: other daemons' object records kept after a read, at most
                       (default ${DEFAULT_RECORD_CACHE})
  --spill-dir DIR      move least-recently-used unheld blobs here when memory is full
                       (default: DATA_DIR/spill with --data-dir, else off)
  --http-port N        serve the dashboard, /metrics and /api on this TCP port (0 picks one) (default: off)
  --http-host HOST     address the HTTP port binds to (default 127.0.0.1: this machine only); with
                       --rpc-token, everything but /metrics asks for the token
  --log-level LEVEL    debug|info|warn|error: the least a line on stderr must be (default $TRELLIS_LOG, then info)
  --log-format FORMAT  text (for people) or json (one object a line) (default text)
  --help               print this text
`;

/** Parses argv (without node and script). Errors: InvalidArgument. */
export function parseArgs(argv: string[]): DaemonOptions & { help?: boolean } {
  const options: DaemonOptions & { help?: boolean } = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=')
      ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
      : [arg, undefined];
    const value = (): string => {
      const next = inline ?? argv[++i];
      if (next === undefined) throw new TrellisError('InvalidArgument', `${flag} needs a value`);
      return next;
    };
    switch (flag) {
      case '--socket':
        options.socket = value();
        break;
      case '--socket-mode': {
        const text = value();
        if (!/^0?[0-7]{3}$/.test(text))
          throw new TrellisError('InvalidArgument', `--socket-mode must be octal such as 0600, got ${text}`);
        options.socketMode = parseInt(text, 8);
        break;
      }
      case '--size':
        options.size = parseSize(value());
        break;
      case '--stream-buffer':
        options.streamBufferBytes = parseSize(value());
        break;
      case '--shm-dir':
        options.shmDir = value();
        break;
      case '--read-index-slots':
        options.readIndexSlots = integer(flag, value());
        break;
      case '--put-ring-bytes':
        options.putRingBytes = ((text) => (text === '0' ? 0 : parseSize(text)))(value());
        break;
      case '--spare-segment':
        options.spareSegment = ((text) => (text === '0' ? 0 : parseSize(text)))(value());
        break;
      case '--rpc-port':
        options.rpcPort = integer(flag, value());
        break;
      case '--rpc-host':
        options.rpcHost = value();
        break;
      case '--rpc-token':
        options.rpcToken = value();
        break;
      case '--rpc-peer': {
        const text = value();
        const match = /^(\d+)=(.+)$/.exec(text);
        if (!match) throw new TrellisError('InvalidArgument', `--rpc-peer takes ID=HOST:PORT, got ${text}`);
        options.rpcPeers = { ...options.rpcPeers, [Number(match[1])]: match[2] };
        break;
      }
      case '--rpc-timeout':
        options.rpcTimeoutMs = integer(flag, value());
        break;
      case '--rpc-tls-cert':
        options.rpcTlsCert = value();
        break;
      case '--rpc-tls-key':
        options.rpcTlsKey = value();
        break;
      case '--rpc-tls-ca':
        options.rpcTlsCa = value();
        break;
      case '--instance-id':
        options.instanceId = integer(flag, value());
        break;
      case '--etcd':
        options.etcd = value();
        break;
      case '--etcd-prefix':
        options.etcdPrefix = value();
        break;
      case '--lease-ttl':
        options.leaseTtl = integer(flag, value());
        break;
      case '--spill-dir':
        options.spillDir = value();
        break;
      case '--data-dir':
        options.dataDir = value();
        break;
      case '--keep-versions':
        options.keepVersions = integer(flag, value());
        break;
      case '--name-cache':
        options.nameCache = integer(flag, value());
        break;
      case '--record-cache':
        options.recordCache = integer(flag, value());
        break;
      case '--http-port':
        options.httpPort = integer(flag, value());
        break;
      case '--http-host':
        options.httpHost = value();
        break;
      case '--log-level':
        options.logLevel = checkLogLevel(flag, value());
        break;
      case '--log-format':
        options.logFormat = checkLogFormat(flag, value());
        break;
      case '--help':
      case '-h':
        options.help = true;
        break;
      default:
        throw new TrellisError('InvalidArgument', `unknown option ${arg}\n\n${USAGE}`);
    }
  }
  return options;
}

function integer(flag: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new TrellisError('InvalidArgument', `${flag} takes a whole number, got ${text}`);
  return Number(text);
}

/** 1 MiB, or the largest power of two at most size/256; 0 when that is under 16 KiB. */
function defaultPutRingBytes(size: number): number {
  const bytes = Math.min(DEFAULT_PUT_ARENA_BYTES, 2 ** Math.floor(Math.log2(Math.max(size / 256, 1))));
  return bytes < 16 * 1024 ? 0 : bytes;
}

/** 0 (no rings) or a multiple of 16 KiB up to 64 MiB. Errors: InvalidArgument. */
function checkPutRingBytes(bytes: number): number {
  if (bytes === 0 || (Number.isInteger(bytes) && bytes % (16 * 1024) === 0 && bytes <= 64 * 1024 * 1024)) return bytes;
  throw new TrellisError(
    'InvalidArgument',
    `putRingBytes must be 0 or a multiple of 16 KiB up to 64 MiB, got ${bytes}`,
  );
}

/** 0 (no index) or a power of two from 64 to 2^22. Errors: InvalidArgument. */
function checkReadIndexSlots(slots: number): number {
  if (slots === 0 || (Number.isInteger(slots) && slots >= 64 && slots <= 2 ** 22 && Number.isInteger(Math.log2(slots))))
    return slots;
  throw new TrellisError(
    'InvalidArgument',
    `readIndexSlots must be 0 or a power of two from 64 to 4194304, got ${slots}`,
  );
}
