/**
 * What a name may be, checked by the client (early, clear errors) and the daemon (always).
 * Names are published dataset names such as `prices/2026-11` or `model:v3`: letters, digits and
 * `_ . - : / @ + =`, at most 256 characters, no empty `/` segments and no `..`. A name never
 * looks like an object id, so `get(idOrName)` is never ambiguous.
 */
import { TrellisError } from '../errors';
import { ID_PATTERN } from './ids';

export const MAX_NAME_LENGTH = 256;
const NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.\-:/@+=]*$/;

export function checkName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH) {
    const shown = typeof name === 'string' ? `a ${name.length}-character string` : typeof name;
    throw new TrellisError(
      'InvalidArgument',
      `a name must be a string of 1 to ${MAX_NAME_LENGTH} characters, got ${shown}`,
    );
  }
  if (!NAME_PATTERN.test(name) || name.includes('//') || name.endsWith('/') || name.split('/').includes('..')) {
    throw new TrellisError(
      'InvalidArgument',
      `invalid name ${JSON.stringify(name)}: use letters, digits and _ . - : / @ + =, starting with a letter, digit or _`,
    );
  }
  if (ID_PATTERN.test(name)) {
    throw new TrellisError('InvalidArgument', `invalid name ${JSON.stringify(name)}: it looks like an object id`);
  }
  return name;
}
