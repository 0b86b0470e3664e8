import { invalidArgument, unsupported } from '../util/errors.js';
import { loadPlugin } from '../util/plugin.js';
import { createMemoryStore } from './memory.js';
import type { StateStore, StateStoreContext, StateStoreFactory } from './spi.js';

/**
 * Which store to use: a URL (`memory:`, `sqlite:PATH`, `sqlite::memory:`), a ready store, a
 * factory, or a third-party package by name with its options.
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
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql' || scheme === 'mysql' || scheme === 'mariadb') {
    throw unsupported(
      `state: ${scheme} stores are not available in this version; use sqlite:PATH or memory:`,
    );
  }
  throw invalidArgument(
    `state: unknown state store ${JSON.stringify(url.replace(/\/\/[^@/]*@/, '//***@'))}; allowed: "memory:", "sqlite:PATH", "sqlite::memory:", a store object, { factory }, or { package }`,
  );
}
