/**
 * connect(): the public client, the raw client of client/ plus typed put/get from types/.
 */
import { Client } from './client/client';
import { IpcChannel } from './client/ipc';
import { defaultSocketPath } from './protocol/socket-path';
import { registerBuiltins, resolveHandle } from './types/builtins';
import { builderFor, type PutOptions } from './types/registry';

registerBuiltins();

export class TrellisClient extends Client {
  constructor(channel: IpcChannel) {
    super(channel);
  }

  /**
   * Stores a value with the builder that takes it; small values and named puts take one round
   * trip. Errors: TypeMismatch (no builder), NameExists, OutOfMemory, InvalidArgument.
   */
  async put(value: unknown, options: PutOptions = {}): Promise<string> {
    return builderFor(value)(this, value, options);
  }

  /**
   * The value of an object (by id or name), rebuilt by the resolver for its typename; zero-copy
   * where the type allows. With no resolver for the typename, the object handle itself.
   * Errors: ObjectNotFound, NameNotFound, NotSealed.
   */
  async get(idOrName: string): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
    return resolveHandle(await this.getObject(idOrName), this);
  }
}

/** Connects to the daemon at socketPath, $TRELLIS_SOCKET, or the default path. */
export async function connect(socketPath: string = defaultSocketPath()): Promise<TrellisClient> {
  return new TrellisClient(await IpcChannel.open(socketPath));
}
