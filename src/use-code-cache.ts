/**
 * Imported first by index.ts, so that the package's other modules compile with the code cache
 * (code-cache.ts): an import is loaded where it stands, before the statements after it run.
 */
import { useCodeCache } from './code-cache';
import { VERSION } from './version';

useCodeCache(VERSION);
