import { invalidArgument } from '../util/errors.js';
import { loadPlugin } from '../util/plugin.js';
import { createMemoryStore } from './memory.js';
import type { StateStore, StateStoreContext, StateStoreFactory } from './spi.js';
import { maskUrl, parseServerUrl, serverKindOf } from './url.js';

/**
 * Which store to use: a URL (`memory:`, `sqlite:PATH`, `sqlite::memory:`,
 * `postgres://USER:PASSWORD@HOST:PORT/DATABASE`, `postgresql://…`, `mysql://…`, `mariadb://…`,
 * with optional `?connectTimeoutMs=5000&poolSize=10`), a ready store, a factory, or a
 * third-party package by name with its options.
 */
export type StateOption =
  | string
  | StateStore
  | { factory: StateStoreFactory; options?: unknown }
  | { package: string; options?: unknown };

/** Opens the store `option` describes. */
export async function openStateStore(option: StateOption, ctx: StateStoreContext): Promise<StateStore> {
  if (typeof option === 'string') return openUrl(option, ctx);
  if ('factory' in option) return option.factory(option.options, ctx);
  if ('package' in option) {
    const factory = await loadPlugin<StateStoreFactory>(option.package, 'createStateStore', 'state store');
    return factory(option.options, ctx);
  }
  return option;
}

/** The sqlite file a state URL points to, or null (for choosing a default lock directory). */
export function sqliteFileOf(option: StateOption): string | null {
  if (typeof option !== 'string' || !option.startsWith('sqlite:')) return null;
  const path = option.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
  return path === ':memory:' || path === '' ? null : path;
}

async function openUrl(url: string, ctx: StateStoreContext): Promise<StateStore> {
  if (url === 'memory:' || url === 'memory') return createMemoryStore();
  const file = sqliteFileOf(url);
  if (url.startsWith('sqlite:')) {
    const { createSqliteStore } = await import('./sqlite.js');
    return createSqliteStore(file ?? ':memory:', ctx);
  }
  if (serverKindOf(url)) {
    // Parsed before the client library loads: a bad URL costs nothing and shows no password.
    const target = parseServerUrl(url);
    if (target.kind === 'postgres') {
      const { createPostgresStore } = await import('./postgres.js');
      return createPostgresStore(target);
    }
    const { createMysqlStore } = await import('./mysql.js');
    return createMysqlStore(target);
  }
  throw invalidArgument(
    `state: unknown state store ${JSON.stringify(maskUrl(url))}; allowed: "memory:", "sqlite:PATH", "sqlite::memory:", "postgres://USER:PASSWORD@HOST:PORT/DATABASE", "mysql://USER:PASSWORD@HOST:PORT/DATABASE", a store object, { factory }, or { package }`,
  );
}
