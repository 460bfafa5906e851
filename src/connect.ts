/** connect(): the public client. */
import { Client } from './client/client';

export type { Client };

/** Connects to the daemon at socketPath, $TRELLIS_SOCKET, or the default path. */
export function connect(socketPath?: string): Promise<Client> {
  return Client.open(socketPath);
}
