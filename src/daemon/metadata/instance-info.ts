/**
 * What a daemon publishes about itself in etcd, and where. Keys are relative to the cluster
 * prefix (see EtcdConnection):
 *
 *   instances/00003    JSON InstanceInfo, on the daemon's lease: it vanishes when the daemon does
 *   instance-counter   the last instance id handed out, so ids are not reused soon after
 *
 * Ids are zero-padded so that a range read lists instances in id order.
 */
import { MAX_INSTANCE_ID } from '../../protocol/ids';

export const MIN_INSTANCE_ID = 1;
export { MAX_INSTANCE_ID };
export const INSTANCES_PREFIX = 'instances/';
export const INSTANCE_COUNTER_KEY = 'instance-counter';
const ID_DIGITS = String(MAX_INSTANCE_ID).length;

export interface InstanceInfo {
  /** Cluster-unique, 1..65535; the first four hex digits of every object id it creates. */
  instanceId: number;
  hostname: string;
  /** The daemon's UNIX socket on its host. */
  socket: string;
  /** host:port of its RPC server, or null when it serves none. */
  rpcEndpoint: string | null;
  /** Milliseconds since the epoch. With hostname and socket, tells one daemon run from another. */
  startedAt: number;
}

/** An instance as one daemon currently sees it. */
export interface InstanceStatus extends InstanceInfo {
  /** False once its key is gone (its lease expired or it left); its last info is kept. */
  alive: boolean;
}

export function instanceKey(instanceId: number): string {
  return INSTANCES_PREFIX + String(instanceId).padStart(ID_DIGITS, '0');
}

/** The id in an `instances/NNNNN` key, or undefined for anything else. */
export function instanceIdOfKey(key: string): number | undefined {
  if (!key.startsWith(INSTANCES_PREFIX)) return undefined;
  const digits = key.slice(INSTANCES_PREFIX.length);
  if (!/^\d+$/.test(digits)) return undefined;
  const id = Number(digits);
  return isInstanceId(id) ? id : undefined;
}

export function isInstanceId(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= MIN_INSTANCE_ID && (value as number) <= MAX_INSTANCE_ID;
}

export function encodeInstanceInfo(info: InstanceInfo): string {
  const { instanceId, hostname, socket, rpcEndpoint, startedAt } = info;
  return JSON.stringify({ instanceId, hostname, socket, rpcEndpoint, startedAt });
}

/**
 * Reads a value from etcd. Anyone with access to etcd can write there, so a value that does not
 * parse, or whose id disagrees with its key, is ignored rather than trusted.
 */
export function decodeInstanceInfo(key: string, value: Buffer | string): InstanceInfo | undefined {
  const keyId = instanceIdOfKey(key);
  if (keyId === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString());
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const record = parsed as Record<string, unknown>;
  if (record.instanceId !== keyId) return undefined;
  if (typeof record.hostname !== 'string' || typeof record.socket !== 'string') return undefined;
  if (record.rpcEndpoint !== null && typeof record.rpcEndpoint !== 'string') return undefined;
  if (typeof record.startedAt !== 'number') return undefined;
  return {
    instanceId: keyId,
    hostname: record.hostname,
    socket: record.socket,
    rpcEndpoint: record.rpcEndpoint,
    startedAt: record.startedAt,
  };
}

/** Are these the same run of the same daemon (not just the same id)? */
export function sameIncarnation(a: InstanceInfo, b: InstanceInfo): boolean {
  return (
    a.instanceId === b.instanceId && a.hostname === b.hostname && a.socket === b.socket && a.startedAt === b.startedAt
  );
}
