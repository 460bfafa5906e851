/**
 * The built-in types of API.md, registered once when trellis loads. Registered from the most
 * general (Value) to the most specific, since builders are tried newest first.
 */
import type { Client } from '../client/client';
import type { ObjectHandle } from '../client/object-handle';
import { BLOB_TYPENAME, buildBlob, isBytes, resolveBlob } from './blob';
import { registerArrowTypes } from './dataframe';
import { guardResolve } from './malformed';
import { registerBuilder, registerResolver, resolverFor, builderFor } from './registry';
import { buildSequence, resolveSequence, SEQUENCE_TYPENAME } from './sequence';
import { SHAREABLE_LIST_TYPENAME, ShareableList } from './shareable-list';
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

  registerBuilder(isPlainValue, buildValue);
  registerResolver(VALUE_TYPENAME, resolveValue);

  registerBuilder(
    (value) => Array.isArray(value) && !isPlainValue(value),
    (client, items: unknown[], options) => buildSequence(client, items, options, (item) => builderFor(item)(client, item, {})),
  );
  registerResolver(SEQUENCE_TYPENAME, (object, client) => resolveSequence(object, (item) => resolveHandle(item, client)));

  registerBuilder(isBytes, buildBlob);
  registerResolver(BLOB_TYPENAME, resolveBlob);

  registerBuilder(isTensor, buildTensor);
  registerResolver(TENSOR_TYPENAME, resolveTensor);

  registerBuilder(
    (value) => value instanceof ShareableList,
    async (client, list: ShareableList, options) => {
      if (!list.frozen) await list.freeze();
      if (options.name) await client.putName(list.name, options.name, { override: options.override });
      return list.name;
    },
  );
  registerResolver(SHAREABLE_LIST_TYPENAME, (object, client) =>
    guardResolve(object, () => ShareableList.fromBlob(client, { id: object.id, size: object.nbytes, buffer: object.buffer })),
  );

  registerArrowTypes();
}
