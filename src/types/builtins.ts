/**
 * The built-in types of API.md, registered once when trellis loads. Registered from the most
 * general (Value) to the most specific, since builders are tried newest first.
 */
import type { Client } from '../client/client';
import type { ObjectHandle } from '../client/object-handle';
import { TrellisError } from '../errors';
import { BLOB_TYPENAME, buildBlob, isBytes, resolveBlob } from './blob';
import { registerArrowTypes } from './dataframe';
import { builderFor, registerBuiltinBuilder, registerResolver, resolverFor } from './registry';
import { buildSequence, resolveSequence, SEQUENCE_TYPENAME } from './sequence';
import { resolveShareableList, SHAREABLE_LIST_TYPENAME, ShareableList } from './shareable-list';
import { buildTensor, isTensor, resolveTensor, TENSOR_TYPENAME } from './tensor';
import { buildValue, isPlainValue, resolveValue, VALUE_TYPENAME } from './value';

/** Resolves a handle with its registered resolver; without one, the handle itself. */
export async function resolveHandle(object: ObjectHandle, client: Client): Promise<unknown> {
  const resolve = resolverFor(object.typename);
  return resolve ? resolve(object, client) : object;
}

let registered = false;

export function registerBuiltins(): void {
  if (registered) return;
  registered = true;

  registerBuiltinBuilder(isPlainValue, buildValue);
  registerResolver(VALUE_TYPENAME, resolveValue);

  registerBuiltinBuilder(
    (value) => Array.isArray(value) && !isPlainValue(value),
    (client, items: unknown[], options) =>
      buildSequence(client, items, options, (item) => builderFor(item)(client, item, {})),
  );
  registerResolver(SEQUENCE_TYPENAME, (object, client) =>
    resolveSequence(object, (item) => resolveHandle(item, client)),
  );

  registerBuiltinBuilder(isBytes, buildBlob);
  registerResolver(BLOB_TYPENAME, resolveBlob);

  registerBuiltinBuilder(isTensor, buildTensor);
  registerResolver(TENSOR_TYPENAME, resolveTensor);

  registerBuiltinBuilder(
    (value) => value instanceof ShareableList,
    async (client, list: ShareableList, options) => {
      // A list is sealed by freeze(): labels and parents go with that seal when put freezes it.
      if (!list.frozen) {
        await list.freeze({ labels: options.labels, parents: options.parents });
      } else {
        if (options.parents !== undefined && options.parents.length > 0) {
          throw new TrellisError(
            'InvalidArgument',
            `ShareableList ${list.name} is frozen already, so put cannot record its parents: pass them to freeze({ parents })`,
          );
        }
        if (options.labels !== undefined && Object.keys(options.labels).length > 0)
          await client.label(list.name, options.labels);
      }
      if (options.name) await client.putName(list.name, options.name, { override: options.override });
      if (options.persist && options.ttl === undefined) await client.persist(list.name);
      return list.name;
    },
  );
  registerResolver(SHAREABLE_LIST_TYPENAME, resolveShareableList);

  registerArrowTypes();
}
