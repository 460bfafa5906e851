/**
 * Where the daemon listens when nobody says otherwise: $TRELLIS_SOCKET, else
 * $XDG_RUNTIME_DIR/trellis/trellisd.sock, else /tmp/trellis-$UID/trellisd.sock. The folder is
 * private (0700) so that the socket is never reachable by other users, even for an instant.
 */
import * as os from 'node:os';
import * as path from 'node:path';

export const SOCKET_ENV = 'TRELLIS_SOCKET';

export function defaultSocketDir(): string {
  const runtime = process.env.XDG_RUNTIME_DIR;
  if (runtime) return path.join(runtime, 'trellis');
  return path.join(os.tmpdir(), `trellis-${process.getuid?.() ?? 'user'}`);
}

export function defaultSocketPath(): string {
  return process.env[SOCKET_ENV] || path.join(defaultSocketDir(), 'trellisd.sock');
}
