/**
 * getObjects with `columns`: the daemon answers plain blobs (a single blob of its own, with no
 * labels, fields, members or parents: what a put of a Buffer makes) as columns, and the client
 * turns them back into the replies getObject would give. For 100 small Buffers this is a few
 * lists instead of 100 map trees, which took most of a getMany's time to encode and decode.
 */
import type { WireError } from '../errors';
import type { GetObjectReply, GetObjectsReply, PlainBlobColumns } from './messages';

function isEmpty(record: Record<string, unknown>): boolean {
  for (const key in record) if (Object.prototype.hasOwnProperty.call(record, key)) return false;
  return true;
}

/** Whether the columns can carry this reply without losing anything. */
export function isPlainBlob({ meta, blobs }: GetObjectReply, instanceId: number): boolean {
  return (
    blobs.length === 1 &&
    blobs[0].id === meta.id &&
    blobs[0].size === meta.nbytes &&
    meta.instanceId === instanceId &&
    meta.parents === undefined &&
    isEmpty(meta.labels) &&
    isEmpty(meta.fields) &&
    isEmpty(meta.members)
  );
}

/**
 * The daemon's half: plain blobs to columns, every other reply as it is, in order. `positions`:
 * each reply's position among the refs, when some refs are not among the replies (`each`).
 */
export function toColumns(replies: GetObjectReply[], instanceId: number, positions?: number[]): GetObjectsReply {
  const objects: GetObjectReply[] = [];
  const plain: PlainBlobColumns = {
    at: [],
    ids: [],
    typenames: [],
    sizes: [],
    createdAt: [],
    segments: [],
    offsets: [],
    instanceId,
  };
  replies.forEach((reply, i) => {
    if (!isPlainBlob(reply, instanceId)) {
      objects.push(reply);
      return;
    }
    const [blob] = reply.blobs;
    plain.at.push(positions === undefined ? i : positions[i]);
    plain.ids.push(blob.id);
    plain.typenames.push(reply.meta.typename);
    plain.sizes.push(blob.size);
    plain.createdAt.push(reply.meta.createdAt);
    plain.segments.push(blob.segment);
    plain.offsets.push(blob.offset);
  });
  return plain.at.length === 0 ? { objects } : { objects, plain };
}

/** The client's half: every object's reply, in the order of the refs asked for (all or none). */
export function fromColumns(reply: GetObjectsReply): GetObjectReply[] {
  if (reply.plain === undefined || reply.plain.at.length === 0) return reply.objects;
  return answers(reply) as GetObjectReply[];
}

/** Each ref's answer, in order: its reply, or (with `each`) the error it failed with. */
export function answers({ objects, plain, errors }: GetObjectsReply): Array<GetObjectReply | WireError> {
  const count = objects.length + (plain?.at.length ?? 0) + (errors?.at.length ?? 0);
  const all: Array<GetObjectReply | WireError> = new Array(count);
  plain?.at.forEach((at, i) => {
    const id = plain.ids[i];
    const nbytes = plain.sizes[i];
    all[at] = {
      meta: {
        id,
        typename: plain.typenames[i],
        nbytes,
        instanceId: plain.instanceId,
        createdAt: plain.createdAt[i],
        labels: {},
        fields: {},
        members: {},
      },
      blobs: [{ id, size: nbytes, segment: plain.segments[i], offset: plain.offsets[i] }],
    };
  });
  errors?.at.forEach((at, i) => (all[at] = errors.errors[i]));
  let next = 0;
  for (let i = 0; i < count; i++) if (all[i] === undefined) all[i] = objects[next++];
  return all;
}

export function isWireError(answer: GetObjectReply | WireError): answer is WireError {
  return 'code' in answer;
}
