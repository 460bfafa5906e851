/** Published names: the client half. Names are checked here too, for early, clear errors. */
import { checkName } from '../protocol/names';
import { isObjectId } from '../protocol/ids';
import { TrellisError } from '../errors';
import type { NameVersion } from '../protocol/messages';
import type { Channel } from './channel';

export interface PutNameOptions {
  /** Move the name if it points to another object. */
  override?: boolean;
  /** Refuse with Conflict unless the name is at this version (0: unless it does not exist). */
  expectVersion?: number;
}

export interface GetNameOptions {
  /** A kept version rather than the latest. */
  version?: number;
  wait?: boolean;
  timeoutMs?: number;
}

export class Names {
  constructor(private readonly channel: Channel) {}

  /**
   * Returns the name's version. Errors: NameExists (unless override), Conflict (not at
   * expectVersion), ObjectNotFound, InvalidArgument.
   */
  async put(id: string, name: string, options: PutNameOptions = {}): Promise<number> {
    const { override = false, expectVersion } = options;
    const request = { id: checkId(id), name: checkName(name), override, expectVersion };
    return (await this.channel.request('putName', request)).version;
  }

  /**
   * All or none; returns each name's version.
   * Errors: NameExists (unless override), ObjectNotFound, InvalidArgument.
   */
  async putMany(names: Record<string, string>, options: { override?: boolean } = {}): Promise<Record<string, number>> {
    for (const [name, id] of Object.entries(names)) {
      checkName(name);
      checkId(id);
    }
    return (await this.channel.request('putNames', { names, override: options.override ?? false })).versions;
  }

  /** Errors: NameNotFound (after `timeoutMs` when waiting; or that version is not kept), InvalidArgument. */
  async get(name: string, options: GetNameOptions = {}): Promise<string> {
    const { version, wait = false, timeoutMs } = options;
    const request = { name: checkName(name), version, wait, timeoutMs };
    return (await this.channel.request('getName', request)).id;
  }

  /** The name's kept versions, newest first. Errors: NameNotFound, InvalidArgument. */
  async versions(name: string): Promise<NameVersion[]> {
    return (await this.channel.request('versions', { name: checkName(name) })).versions;
  }

  /** The previous version becomes latest; dropping the last one drops the name. Errors: NameNotFound. */
  async dropVersion(name: string, version: number): Promise<void> {
    await this.channel.request('dropVersion', { name: checkName(name), version });
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
    throw new TrellisError(
      'InvalidArgument',
      `${JSON.stringify(id)} is not an object id (expected o followed by 16 hex digits)`,
    );
  }
  return id;
}
