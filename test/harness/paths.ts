import { fileURLToPath } from 'node:url';

// Compiled tests live in dist/test/**; this file is dist/test/harness/paths.js.

/** The compiled child script `dist/test/children/<name>.js`, run by tests as a real process. */
export const childScript = (name: string) =>
  fileURLToPath(new URL(`../children/${name}.js`, import.meta.url));

/** A file in the (uncompiled) `test/fixtures` folder. */
export const fixturePath = (relative: string) =>
  fileURLToPath(new URL(`../../../test/fixtures/${relative}`, import.meta.url));
