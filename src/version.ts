/** The package's version, read once from package.json (the same relative path from src/ and dist/). */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- JSON outside rootDir cannot be imported
export const VERSION: string = (require('../package.json') as { version: string }).version;
