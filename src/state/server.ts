import { setTimeout as sleep } from 'node:timers/promises';
import { busy, isCairnError, stateStoreFailure } from '../util/errors.js';
import { maskSecrets } from '../util/redact.js';
import { foreignCairnTables, schemaStatus } from './migrations.js';
import type { ServerUrl } from './url.js';

// What the PostgreSQL and MySQL stores share: reading the schema state before writing anything,
// wording connection failures, retrying transactions that lost a race, waiting for a lock.

/**
 * Decides from the `cairn_*` tables a database holds (and the applied migrations, when it has a
 * migration table) whether the schema is current, needs migrating, or must be refused. Other
 * tables are fine: a server database is often shared. Tables named like Cairn's without its
 * migration table belong to someone else.
 * @throws CairnError STATE_STORE_FAILURE for foreign `cairn_*` tables or a newer schema
 */
export function serverSchemaStatus(
  cairnTables: readonly string[],
  applied: readonly string[] | null,
  location: string,
): 'current' | 'migrate' {
  if (applied === null && cairnTables.length > 0) throw foreignCairnTables(cairnTables, location);
  return schemaStatus(applied, location);
}

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is the server running and listening on that port?)',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'the server closed the connection',
};

/**
 * A STATE_STORE_FAILURE for an open that failed, naming host and port and saying why in words;
 * the password never appears (not even when the driver's message would contain it).
 */
export function openFailure(target: ServerUrl, err: unknown, reason?: string): Error {
  if (isCairnError(err)) return err;
  const e = err as { code?: string; errno?: number; message?: string };
  const server = target.kind === 'postgres' ? 'PostgreSQL' : 'MySQL/MariaDB';
  const why =
    reason ??
    NETWORK_REASONS[e.code ?? ''] ??
    (isTimeout(err)
      ? `no answer within ${target.connectTimeoutMs} ms (connectTimeoutMs)`
      : (e.message ?? String(err)));
  const message = `cannot open state store ${target.location}: ${server} at ${target.host}:${target.port}: ${why}`;
  return stateStoreFailure(maskSecrets(message, secretsOf(target)), { cause: scrub(err, target) });
}

function isTimeout(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e.code === 'ETIMEDOUT' || /timeout|timed out/i.test(e.message ?? '');
}

/** Secrets to mask in messages: the password, when it is long enough not to mangle them. */
export function secretsOf(target: ServerUrl): string[] {
  return target.password && target.password.length >= 4 ? [target.password] : [];
}

/**
 * Removes from a driver error what could carry secrets into logs: mysql2 puts the whole
 * statement, with its values (records may hold CHAP passwords), in `sql`.
 */
export function scrub<T>(err: T, target?: ServerUrl): T {
  if (err && typeof err === 'object') {
    const e = err as { sql?: unknown; message?: unknown };
    if ('sql' in e) e.sql = '(omitted)';
    if (target && typeof e.message === 'string') e.message = maskSecrets(e.message, secretsOf(target));
  }
  return err;
}

/**
 * Runs a transaction again when it lost a race the database resolved by failing it: two
 * `delete` + `insert` of the same new key (a unique violation under read committed, a deadlock
 * under MySQL's gap locks). A real clash fails every attempt and is reported as such.
 */
export async function retryRace<T>(fn: () => Promise<T>, isRace: (err: unknown) => boolean): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      // Each round has a winner, so a loser of many concurrent writers gets there in a few.
      if (attempt >= 10 || !isRace(err)) throw err;
      await sleep(Math.random() * Math.min(2 ** attempt, 100));
    }
  }
}

/** The BUSY error of a store lock whose deadline passed. */
export function lockBusy(key: string, location: string) {
  return busy(`"${key}" is locked by another process using ${location}; gave up waiting`, {
    details: { key },
  });
}

/**
 * Waits for a connection of a lock pool. While every connection of the pool holds a lock
 * (`exhausted`), waiting for one is waiting for a lock: it ends at `deadline` with BUSY, and a
 * connection that comes later is given back. Otherwise the pool's connect timeout bounds it.
 */
export async function checkoutUntil<T>(
  checkout: () => Promise<T>,
  opts: {
    deadline: number;
    exhausted: () => boolean;
    giveBack: (conn: T) => void;
    busy: () => Error;
    failure: (err: unknown) => Error;
  },
): Promise<T> {
  for (;;) {
    const pending = checkout();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), Math.max(0, opts.deadline - Date.now()));
    });
    try {
      const conn = await Promise.race([pending, expired]);
      if (conn !== null) return conn;
      if (!opts.exhausted()) return await pending;
      pending.then(opts.giveBack, () => {});
      throw opts.busy();
    } catch (err) {
      if (isCairnError(err)) throw err;
      // pg gives up waiting in its queue after the connect timeout: wait on until the deadline.
      if (!opts.exhausted() || Date.now() >= opts.deadline) throw opts.failure(err);
    } finally {
      clearTimeout(timer);
    }
  }
}
