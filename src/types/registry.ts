/**
 * Builders turn JS values into stored objects; resolvers turn stored objects back into values.
 * Builders are tried newest first, so a user's registerBuilder wins over the built-ins.
 * Resolvers are chosen by the longest typename prefix, so `my::Tensor` can refine `my::`.
 */
import type { Client } from '../client/client';
import type { ObjectHandle } from '../client/object-handle';
import { TrellisError } from '../errors';

export interface PutOptions {
  /** Publish the new object under this name (in the same round trip where possible). */
  name?: string;
  override?: boolean;
  labels?: Record<string, string>;
  /** Tensors: the shape; default [length]. */
  shape?: number[];
  /** Cluster: make it visible cluster-wide (naming does this too); durable with --data-dir. */
  persist?: boolean;
  /** Seconds until the object is deleted; implies persist (a second request, after the put). */
  ttl?: number;
  /** Lineage: the objects (ids or names) this one was made from, recorded by id. */
  parents?: string[];
}

/**
 * What a builder's one creating request carries from the put's options: name, override,
 * persist and parents (labels go in the metadata spec, or in a seal's options). Every built-in
 * builder passes its options through here, so each put applies all of them in that request.
 */
export function publishOptions(options: PutOptions): {
  name?: string;
  override?: boolean;
  persist?: boolean;
  parents?: string[];
} {
  const published: { name?: string; override?: boolean; persist?: boolean; parents?: string[] } = {};
  if (options.name !== undefined) published.name = options.name;
  if (options.override !== undefined) published.override = options.override;
  if (options.persist || options.ttl !== undefined) published.persist = true;
  if (options.parents !== undefined) published.parents = options.parents;
  return published;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Builder = (client: Client, value: any, options: PutOptions) => Promise<string>;
export type Resolver = (object: ObjectHandle, client: Client) => unknown;

const builders: Array<{ test: (value: unknown) => boolean; build: Builder }> = [];
/** Builders registered by trellis itself, which apply every put option (publishOptions). */
const builtinBuilders = new WeakSet<Builder>();
const resolvers = new Map<string, Resolver>();
/**
 * resolverFor's answers by typename (null: none), cleared when a resolver is registered: every
 * get asks, and the prefix scan cost a small get from the read index ~0.5 µs. Bounded, since
 * typenames are the user's to make.
 */
const resolvedByTypename = new Map<string, Resolver | null>();
const MAX_RESOLVED_TYPENAMES = 1024;

export function registerBuilder(test: (value: unknown) => boolean, build: Builder): void {
  if (typeof test !== 'function' || typeof build !== 'function') {
    throw new TrellisError('InvalidArgument', 'registerBuilder(test, build): expected two functions');
  }
  builders.unshift({ test, build });
}

/** Registers one of trellis's own builders (builtins.ts). */
export function registerBuiltinBuilder(test: (value: unknown) => boolean, build: Builder): void {
  registerBuilder(test, build);
  builtinBuilders.add(build);
}

export function isBuiltinBuilder(build: Builder): boolean {
  return builtinBuilders.has(build);
}

export function registerResolver(typenamePrefix: string, resolve: Resolver): void {
  if (typeof typenamePrefix !== 'string' || typenamePrefix.length === 0 || typeof resolve !== 'function') {
    throw new TrellisError(
      'InvalidArgument',
      'registerResolver(typenamePrefix, resolve): expected a non-empty string and a function',
    );
  }
  resolvers.set(typenamePrefix, resolve);
  resolvedByTypename.clear();
}

/** Errors: TypeMismatch when no builder takes the value. */
export function builderFor(value: unknown): Builder {
  for (const { test, build } of builders) if (test(value)) return build;
  throw new TrellisError(
    'TypeMismatch',
    `no builder takes a value of type ${describeValue(value)}; register one with registerBuilder`,
  );
}

/**
 * The resolver with the longest matching prefix, or undefined (get then returns the raw object).
 * A prefix matches whole name parts: `trellis::Tensor` matches `trellis::Tensor<float64>` and
 * `my::` matches `my::Thing`, but `trellis::RecordBatch` does not match `trellis::RecordBatchStream`.
 */
export function resolverFor(typename: string): Resolver | undefined {
  // A prefix as long as the typename is the longest that can match: no need to look further (a
  // get of a built-in type, whose typename is its registered prefix, runs no loop and no regex).
  const exact = resolvers.get(typename);
  if (exact !== undefined) return exact;
  const known = resolvedByTypename.get(typename);
  if (known !== undefined) return known ?? undefined;
  const found = findResolver(typename);
  if (resolvedByTypename.size >= MAX_RESOLVED_TYPENAMES) resolvedByTypename.clear();
  resolvedByTypename.set(typename, found ?? null);
  return found;
}

function findResolver(typename: string): Resolver | undefined {
  let best: string | undefined;
  for (const prefix of resolvers.keys()) {
    if (matchesPrefix(typename, prefix) && (best === undefined || prefix.length > best.length)) best = prefix;
  }
  return best === undefined ? undefined : resolvers.get(best);
}

function matchesPrefix(typename: string, prefix: string): boolean {
  if (!typename.startsWith(prefix)) return false;
  if (typename.length === prefix.length || /[:<]$/.test(prefix)) return true;
  return typename[prefix.length] === '<' || typename[prefix.length] === ':';
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'object' && value !== null) return value.constructor?.name ?? 'Object';
  return typeof value;
}
