/**
 * connect(): the public client, the raw client of client/ plus typed put/get from types/.
 */
import type { Channel } from './client/channel';
import { Client } from './client/client';
import { IpcChannel } from './client/ipc';
import type { RpcConnectOptions } from './client/rpc';
import { defaultSocketPath } from './protocol/socket-path';
import { registerBuiltins, resolveHandle } from './types/builtins';
import type { MetadataSpec } from './client/objects';
import type { ObjectHandle } from './client/object-handle';
import { builderFor, isBuiltinBuilder, publishOptions, type PutOptions } from './types/registry';
import { inlineValueSpec } from './types/value';

registerBuiltins();

export class TrellisClient extends Client {
  constructor(channel: Channel) {
    super(channel);
  }

  /**
   * Stores a value with the builder that takes it; small values and named puts take one round
   * trip. Errors: TypeMismatch (no builder), NameExists, OutOfMemory, InvalidArgument.
   */
  async put(value: unknown, options: PutOptions = {}): Promise<string> {
    const build = builderFor(value);
    const id = await build(this, value, options);
    // Built-in builders apply every option in their creating request (publishOptions); a user's
    // builder may not, so its labels and persist follow in requests of their own.
    if (!isBuiltinBuilder(build)) {
      if (options.labels !== undefined && Object.keys(options.labels).length > 0) await this.label(id, options.labels);
      if (options.persist && options.ttl === undefined) await this.persist(id);
    }
    // The creating requests carry no ttl: it is set once the object is there.
    if (options.ttl !== undefined && options.ttl !== null) await this.persist(id, { ttl: options.ttl });
    return id;
  }

  /**
   * Puts many values: small plain values go in one round trip together (all or none); the rest
   * are put one by one, concurrently. `options[i]` applies to `values[i]`.
   */
  async putMany(values: unknown[], options: PutOptions[] = []): Promise<string[]> {
    const ids: string[] = new Array(values.length);
    const batch: Array<{ index: number; spec: MetadataSpec; options: PutOptions }> = [];
    const others: Array<Promise<void>> = [];
    values.forEach((value, index) => {
      const valueOptions = options[index] ?? {};
      const spec = inlineValueSpec(value, valueOptions);
      if (spec) batch.push({ index, spec, options: valueOptions });
      else others.push(this.put(value, valueOptions).then((id) => void (ids[index] = id)));
    });
    if (batch.length > 0) {
      const created = await this.createMetadataMany(
        batch.map(({ spec, options: o }) => ({ spec, options: publishOptions(o) })),
      );
      batch.forEach(({ index }, i) => (ids[index] = created[i]));
      await Promise.all(
        batch.map(({ index, options: o }) =>
          o.ttl !== undefined && o.ttl !== null ? this.persist(ids[index], { ttl: o.ttl }) : undefined,
        ),
      );
    }
    await Promise.all(others);
    return ids;
  }

  /** Stream chunks that are not bytes (arrow RecordBatches, ...) are put as objects. */
  protected override encodeChunk(chunk: unknown): Promise<string> {
    return this.put(chunk);
  }

  protected override decodeChunk(chunk: ObjectHandle): unknown {
    return resolveHandle(chunk, this);
  }

  /**
   * The value of an object (by id or name), rebuilt by the resolver for its typename; zero-copy
   * where the type allows. With no resolver for the typename, the object handle itself.
   * With `fetch`, an object that lives on another instance is first copied here (migrate).
   * With `version`, that kept version of the name (NameNotFound when it is not kept).
   * Errors: ObjectNotFound, NameNotFound, NotSealed; with fetch, as migrate.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async get(idOrName: string, options: { fetch?: boolean; version?: number } = {}): Promise<any> {
    const { fetch = false, version } = options;
    // A kept version without fetch is one request: the daemon resolves the version and answers the object.
    if (!fetch) {
      const handle =
        version === undefined ? await this.getObject(idOrName) : await this.getObjectAtVersion(idOrName, version);
      return resolveHandle(handle, this);
    }
    const named = version === undefined ? idOrName : await this.getName(idOrName, { version });
    return resolveHandle(await this.getObject(await this.migrate(named)), this);
  }
}

/** Connects to the daemon at socketPath, $TRELLIS_SOCKET, or the default path. */
export async function connect(socketPath: string = defaultSocketPath()): Promise<TrellisClient> {
  return new TrellisClient(await IpcChannel.open(socketPath));
}

/**
 * Connects to a daemon's RPC port ('host:port'): the same client, with bytes copied over TCP
 * instead of mapped, for processes on another machine. `{ tls: { ca, cert?, key?, servername? } }`
 * (PEM contents) reaches a daemon started with --rpc-tls-cert; cert and key answer --rpc-tls-ca.
 * Errors: Unavailable, PermissionDenied (token, or a certificate refused either way), InvalidArgument.
 */
export async function connectRpc(endpoint: string, options: RpcConnectOptions = {}): Promise<TrellisClient> {
  // Loaded here, not with trellis: net, tls and the RPC framing are no part of a local client.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a lazy load needs require
  const { RpcChannel } = require('./client/rpc') as typeof import('./client/rpc');
  return new TrellisClient(await RpcChannel.open(endpoint, options));
}
