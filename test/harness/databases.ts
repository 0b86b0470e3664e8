/**
 * Throwaway databases on the real PostgreSQL and MariaDB/MySQL servers of the test machine
 * (`scripts/ensure-databases.sh` installs and starts them). A server that is not there fails
 * the test: it is never skipped.
 *
 * Admin URLs (a superuser, and the database to connect to for CREATE DATABASE):
 * `CAIRN_TEST_POSTGRES_URL` (default `postgres://root@127.0.0.1:5432/postgres`) and
 * `CAIRN_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/mysql`).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { after } from 'node:test';
import { openStateStore } from '../../src/state/open.js';
import type { StateStore } from '../../src/state/spi.js';
import { parseServerUrl, type ServerKind } from '../../src/state/url.js';

export const SERVER_KINDS: readonly ServerKind[] = ['postgres', 'mysql'];

const ADMIN_URL: Record<ServerKind, string> = {
  postgres: process.env.CAIRN_TEST_POSTGRES_URL ?? 'postgres://root@127.0.0.1:5432/postgres',
  mysql: process.env.CAIRN_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/mysql',
};

/** Plain SQL on one database, as a superuser (for setting up and checking what Cairn did). */
export interface Admin {
  /** Runs `text` with `?` placeholders (numbered for PostgreSQL); returns the rows. */
  query<T = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

/** A database made for one test file, dropped by {@link TestDatabase.drop}. */
export interface TestDatabase {
  kind: ServerKind;
  name: string;
  /** The state URL of this database, with the admin URL's user and password. */
  url: string;
  /** A connection to this database for raw SQL. */
  admin: Admin;
  /** The URL of another database on the same server, e.g. one that does not exist. */
  urlOf(database: string, query?: string): string;
  /** Empties Cairn's tables (if any), for a fresh store per test case. */
  wipe(): Promise<void>;
  /** Opens a store on this database through `openStateStore`. */
  open(query?: string): Promise<StateStore>;
  drop(): Promise<void>;
}

/** Display name of a server kind. */
export const serverName = (kind: ServerKind) => (kind === 'postgres' ? 'PostgreSQL' : 'MariaDB/MySQL');

/** Opens a connection with a server's client library, with `url`'s credentials. */
export async function connect(kind: ServerKind, url: string): Promise<Admin> {
  const t = parseServerUrl(url);
  try {
    if (kind === 'postgres') {
      const { default: pg } = await import('pg');
      const client = new pg.Client({
        host: t.host,
        port: t.port,
        user: t.user,
        password: t.password,
        database: t.database,
        connectionTimeoutMillis: 5_000,
      });
      client.on('error', () => {});
      await client.connect();
      return {
        async query<T>(text: string, params: readonly unknown[] = []) {
          let n = 0;
          const numbered = text.replace(/\?/g, () => `$${++n}`);
          return (await client.query(numbered, [...params])).rows as T[];
        },
        close: () => client.end(),
      };
    }
    const { default: mysql } = await import('mysql2/promise');
    const conn = await mysql.createConnection({
      host: t.host,
      port: t.port,
      user: t.user,
      password: t.password,
      database: t.database,
      charset: 'utf8mb4',
      connectTimeout: 5_000,
    });
    conn.on('error', () => {});
    return {
      async query<T>(text: string, params: readonly unknown[] = []) {
        const [rows] = await conn.query(text, [...params] as Array<string | number | null>);
        return (Array.isArray(rows) ? rows : []) as T[];
      },
      close: () => conn.end(),
    };
  } catch (err) {
    throw new Error(
      `${serverName(kind)} is not reachable at ${t.host}:${t.port} as ${t.user ?? '(default user)'}: ${
        (err as Error).message
      }. The database tests need it: run scripts/ensure-databases.sh (or set CAIRN_TEST_${
        kind === 'postgres' ? 'POSTGRES' : 'MYSQL'
      }_URL).`,
    );
  }
}

const created: TestDatabase[] = [];
// Every database a test file made is dropped when the file ends (this module is imported at
// the top level of the file, so the hook is the file's).
after(async () => {
  for (const db of created.splice(0)) await db.drop().catch(() => {});
});

/**
 * Creates a database with a random name, dropped when the test file ends. MySQL databases are made latin1 with a case-insensitive collation (the old
 * server default), so the tests show Cairn's tables bring their own charset and collation.
 */
export async function createTestDatabase(kind: ServerKind): Promise<TestDatabase> {
  const adminUrl = ADMIN_URL[kind];
  const server = await connect(kind, adminUrl);
  const name = `cairn_test_${randomBytes(6).toString('hex')}`;
  await server.query(
    kind === 'postgres'
      ? `create database "${name}"`
      : `create database \`${name}\` character set latin1 collate latin1_swedish_ci`,
  );
  const urlOf = (database: string, query = '') => {
    const i = adminUrl.lastIndexOf('/');
    return `${adminUrl.slice(0, i + 1)}${encodeURIComponent(database)}${query}`;
  };
  const url = urlOf(name);
  const admin = await connect(kind, url);
  let dropped = false;
  const db: TestDatabase = {
    kind,
    name,
    url,
    admin,
    urlOf,
    async wipe() {
      const tables = await admin.query<{ name: string }>(
        kind === 'postgres'
          ? "select table_name as name from information_schema.tables where table_schema = current_schema() and table_name in ('cairn_objects', 'cairn_kv')"
          : "select table_name as name from information_schema.tables where table_schema = database() and table_name in ('cairn_objects', 'cairn_kv')",
      );
      for (const t of tables) await admin.query(`delete from ${t.name}`);
    },
    open: (query = '') => openStateStore(urlOf(name, query), { withLock: (_k, fn) => fn() }),
    async drop() {
      if (dropped) return;
      dropped = true;
      await admin.close().catch(() => {});
      await server.query(
        kind === 'postgres'
          ? `drop database if exists "${name}" with (force)`
          : `drop database if exists \`${name}\``,
      );
      await server.close();
    },
  };
  created.push(db);
  return db;
}

/** A TCP port on 127.0.0.1 where nothing listens (bound, then closed). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A server on 127.0.0.1 that accepts connections and never says a word. */
export async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
