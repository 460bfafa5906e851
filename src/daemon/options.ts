/** The daemon's options, their defaults, and how the command line spells them. */
import * as fs from 'node:fs';
import { TrellisError } from '../errors';
import { DEFAULT_MAX_FRAME_BYTES } from '../protocol/framing';
import { defaultSocketPath } from '../protocol/socket-path';
import { DEFAULT_IDLE_RELEASE_MS } from './memory-policy';
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
  /** Unread bytes a stream may hold before its writer waits; default a quarter of size, at most 256 MiB. */
  streamBufferBytes?: number;
}

export interface ResolvedOptions {
  socket: string;
  size: number;
  socketMode: number;
  maxFrameBytes: number;
  idleReleaseMs: number;
  instanceId: number;
  shmDir: string;
  streamBufferBytes?: number;
}

export const DEFAULT_SIZE = '2GiB';
export const DEFAULT_SOCKET_MODE = 0o600;
export const DEFAULT_SHM_DIR = '/dev/shm';

export function resolveOptions(options: DaemonOptions = {}): ResolvedOptions {
  const socketMode = options.socketMode ?? DEFAULT_SOCKET_MODE;
  if (!Number.isInteger(socketMode) || socketMode < 0 || socketMode > 0o777) {
    throw new TrellisError('InvalidArgument', `socket mode must be an octal permission such as 0600, got ${socketMode}`);
  }
  return {
    socket: options.socket ?? defaultSocketPath(),
    size: parseSize(options.size ?? DEFAULT_SIZE),
    socketMode,
    maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    idleReleaseMs: options.idleReleaseMs ?? DEFAULT_IDLE_RELEASE_MS,
    instanceId: options.instanceId ?? 0,
    shmDir: options.shmDir ?? (fs.existsSync(DEFAULT_SHM_DIR) ? DEFAULT_SHM_DIR : ''),
    streamBufferBytes: options.streamBufferBytes === undefined ? undefined : parseSize(options.streamBufferBytes),
  };
}

export const USAGE = `usage: trellisd [options]

  --socket PATH        UNIX socket to serve (default: $TRELLIS_SOCKET, then a per-user path)
  --socket-mode MODE   socket file permissions, octal (default 0600: this user only)
  --size SIZE          shared memory limit: 512MiB, 2GiB, 1G or bytes (default ${DEFAULT_SIZE})
  --stream-buffer SIZE unread bytes a stream holds before its writer waits (default size/4, max 256MiB)
  --shm-dir DIR        tmpfs that holds the segments, as unnamed files (default ${DEFAULT_SHM_DIR})
  --help               print this text
`;

/** Parses argv (without node and script). Errors: InvalidArgument. */
export function parseArgs(argv: string[]): DaemonOptions & { help?: boolean } {
  const options: DaemonOptions & { help?: boolean } = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
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
        if (!/^0?[0-7]{3}$/.test(text)) throw new TrellisError('InvalidArgument', `--socket-mode must be octal such as 0600, got ${text}`);
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
