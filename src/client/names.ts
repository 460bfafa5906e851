/** Published names: the client half. Names are checked here too, for early, clear errors. */
import { checkName } from '../protocol/names';
import { isObjectId } from '../protocol/ids';
import { TrellisError } from '../errors';
import type { Channel } from './channel';

export class Names {
  constructor(private readonly channel: Channel) {}

  /** Errors: NameExists (unless override), ObjectNotFound, InvalidArgument. */
  async put(id: string, name: string, options: { override?: boolean } = {}): Promise<void> {
    await this.channel.request('putName', { id: checkId(id), name: checkName(name), override: options.override ?? false });
  }

  /** All or none. Errors: NameExists (unless override), ObjectNotFound, InvalidArgument. */
  async putMany(names: Record<string, string>, options: { override?: boolean } = {}): Promise<void> {
    for (const [name, id] of Object.entries(names)) {
      checkName(name);
      checkId(id);
    }
    await this.channel.request('putNames', { names, override: options.override ?? false });
  }

  /** Errors: NameNotFound (after `timeoutMs` when waiting), InvalidArgument. */
  async get(name: string, options: { wait?: boolean; timeoutMs?: number } = {}): Promise<string> {
    const request = { name: checkName(name), wait: options.wait ?? false, timeoutMs: options.timeoutMs };
    return (await this.channel.request('getName', request)).id;
  }

  /** A missing name is not an error; returns whether it existed. */
  async drop(name: string): Promise<boolean> {
    return (await this.channel.request('dropName', { name: checkName(name) })).dropped;
  }

  async list(options: { pattern?: string } = {}): Promise<string[]> {
    return (await this.channel.request('listNames', { pattern: options.pattern })).names;
  }
}

export function checkId(id: unknown): string {
  if (!isObjectId(id)) {
    throw new TrellisError('InvalidArgument', `${JSON.stringify(id)} is not an object id (expected o followed by 16 hex digits)`);
  }
  return id;
}
