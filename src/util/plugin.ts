import { invalidArgument } from './errors.js';

/**
 * Loads a third-party plugin by npm package name: the package's default export, or its
 * export called `exportName`.
 */
export async function loadPlugin<T>(packageName: string, exportName: string, what: string): Promise<T> {
  if (!/^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*$/i.test(packageName) && !packageName.startsWith('file:')) {
    throw invalidArgument(`${what}: ${JSON.stringify(packageName)} is not an npm package name`);
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(packageName.startsWith('file:') ? new URL(packageName).href : packageName)) as Record<
      string,
      unknown
    >;
  } catch (err) {
    throw invalidArgument(`${what}: cannot load package "${packageName}": ${(err as Error).message}`, {
      cause: err,
    });
  }
  const found = mod[exportName] ?? mod.default;
  if (found === undefined)
    throw invalidArgument(`${what}: package "${packageName}" exports neither ${exportName} nor a default`);
  return found as T;
}
