/**
 * Errors of the built-in resolvers when an object's metadata does not fit its typename. Any
 * client may create metadata of any typename with any fields, so a resolver reads what another
 * process wrote and may have lied about: whatever goes wrong while resolving is that object's
 * fault, and the reader gets a TypeMismatch naming it, never a bare Error from a library.
 */
import { isTrellisError, TrellisError } from '../errors';

/** What an error names of the object (an ObjectHandle, or an object got from the read index). */
export interface NamedObject {
  readonly id: string;
  readonly typename: string;
}

/** A TypeMismatch naming the object: `object ID (TYPENAME): WHAT`. */
export function malformed(object: NamedObject, what: string, cause?: unknown): TrellisError {
  return new TrellisError('TypeMismatch', `object ${object.id} (${object.typename}): ${what}`, { cause });
}

/**
 * The error a resolver throws for an error met while resolving `object`. A missing member
 * (ObjectNotFound from ObjectHandle.member) is the metadata's fault here, not a missing object,
 * so it becomes a TypeMismatch too; other trellis errors keep their code.
 */
export function resolveError(object: NamedObject, error: unknown): TrellisError {
  if (isTrellisError(error) && error.code !== 'ObjectNotFound') {
    return error.message.includes(object.id)
      ? error
      : new TrellisError(error.code, `object ${object.id} (${object.typename}): ${error.message}`, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return malformed(object, message, error);
}

/** Runs a resolver, turning anything it throws into resolveError's answer. */
export function guardResolve<T>(object: NamedObject, resolve: () => T): T {
  try {
    return resolve();
  } catch (error) {
    throw resolveError(object, error);
  }
}
