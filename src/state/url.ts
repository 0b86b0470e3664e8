import { invalidArgument } from '../util/errors.js';

/** The database servers Cairn keeps state on, by URL scheme. */
export type ServerKind = 'postgres' | 'mysql';

const SCHEMES: Record<string, ServerKind> = {
  postgres: 'postgres',
  postgresql: 'postgres',
  mysql: 'mysql',
  mariadb: 'mysql',
};
const DEFAULT_PORT: Record<ServerKind, number> = { postgres: 5432, mysql: 3306 };

/** What a `postgres://` or `mysql://` state URL says. */
export interface ServerUrl {
  kind: ServerKind;
  host: string;
  port: number;
  /** Undefined: the client library's default (`PGUSER` or the OS user for PostgreSQL). */
  user: string | undefined;
  password: string | undefined;
  database: string;
  /** Bound on connecting (TCP, TLS-less handshake, authentication). */
  connectTimeoutMs: number;
  /** Connections for statements; locks get a pool of their own (see the stores). */
  poolSize: number;
  /** The URL without its password, safe to print. */
  location: string;
}

/** Query parameters a state URL may carry, with their bounds and defaults. */
const PARAMS = {
  connectTimeoutMs: { min: 1, max: 600_000, default: 5_000, unit: 'milliseconds' },
  poolSize: { min: 1, max: 1_000, default: 10, unit: 'connections' },
} as const;
type Param = keyof typeof PARAMS;

/** The server kind of a state URL's scheme, or null when it is not a database server's. */
export function serverKindOf(url: string): ServerKind | null {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  return (scheme && SCHEMES[scheme]) || null;
}

/**
 * `url` safe to print: the password masked (everything between `//` and the last `@`, except
 * the user name: `postgres://me:***@db/cairn`), and the values of query parameters other than
 * Cairn's own, and any fragment. Also safe for URLs too broken to parse.
 */
export function maskUrl(url: string): string {
  const hash = url.indexOf('#');
  const beforeHash = hash < 0 ? url : url.slice(0, hash);
  const q = beforeHash.indexOf('?');
  const base = q < 0 ? beforeHash : beforeHash.slice(0, q);
  const query =
    q < 0
      ? ''
      : `?${beforeHash
          .slice(q + 1)
          .split('&')
          .map((pair) => {
            const eq = pair.indexOf('=');
            return eq < 0 || Object.hasOwn(PARAMS, pair.slice(0, eq)) ? pair : `${pair.slice(0, eq)}=***`;
          })
          .join('&')}`;
  const scheme = /^[a-z][a-z0-9+.-]*:(\/\/)?/i.exec(base);
  const start = scheme ? scheme[0].length : 0;
  const at = base.lastIndexOf('@');
  let shown = base;
  if (at >= start) {
    const userinfo = base.slice(start, at);
    const colon = userinfo.indexOf(':');
    shown = `${base.slice(0, start)}${colon < 0 ? userinfo : `${userinfo.slice(0, colon)}:***`}${base.slice(at)}`;
  }
  return `${shown}${query}${hash < 0 ? '' : '#***'}`;
}

/**
 * Parses `postgres://USER:PASSWORD@HOST:PORT/DATABASE?connectTimeoutMs=5000&poolSize=10` (also
 * `postgresql://`, `mysql://`, `mariadb://`). A `/ ? # @ :` in the user or password must be
 * percent-encoded.
 * @throws CairnError INVALID_ARGUMENT naming what is wrong; the password is never shown
 */
export function parseServerUrl(url: string): ServerUrl {
  const shown = maskUrl(url);
  const bad = (what: string) =>
    invalidArgument(`state: invalid database URL "${shown}": ${what}; expected ${example(url)}`);
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/i.exec(url);
  const kind = serverKindOf(url);
  if (!kind) throw bad('unknown scheme');
  if (!m) throw bad('it does not start with SCHEME://');
  const [, , authority = '', path = '', query = '', fragment] = m;
  if (fragment !== undefined) throw bad('a "#" fragment is not allowed (percent-encode "#" as %23)');

  const at = authority.lastIndexOf('@');
  const userinfo = at < 0 ? null : authority.slice(0, at);
  const hostport = authority.slice(at + 1);
  let user: string | undefined;
  let password: string | undefined;
  if (userinfo !== null) {
    const colon = userinfo.indexOf(':');
    user = decode(colon < 0 ? userinfo : userinfo.slice(0, colon), () =>
      bad('the user name has bad %-encoding'),
    );
    if (colon >= 0)
      password = decode(userinfo.slice(colon + 1), () => bad('the password has bad %-encoding'));
    if (user === '') user = undefined;
  }

  const hp = /^(\[[0-9a-f:.]+\]|[^:[\]]*)(?::([^:]*))?$/i.exec(hostport);
  if (!hp) throw bad('the host is not a host name, an IPv4 address or a [bracketed] IPv6 address');
  const [, rawHost = '', rawPort] = hp;
  if (rawHost === '') throw bad('no host');
  if (!/^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)$/i.test(rawHost))
    throw bad(
      'the host is not a host name, an IPv4 address or a [bracketed] IPv6 address (a "/", "@" or ":" in the password must be percent-encoded)',
    );
  const host = rawHost.replace(/^\[(.*)\]$/, '$1');
  let port = DEFAULT_PORT[kind];
  if (rawPort !== undefined) {
    // The value is not echoed: a password with an unencoded "/" would end up here.
    if (!/^\d{1,5}$/.test(rawPort) || Number(rawPort) < 1 || Number(rawPort) > 65535)
      throw bad(
        'the port is not a number from 1 to 65535 (a "/", "?", "#" or "@" in the user name or password must be percent-encoded: %2F, %3F, %23, %40)',
      );
    port = Number(rawPort);
  }

  if (path === '' || path === '/') throw bad('no database name after the host');
  if (path.indexOf('/', 1) >= 0) throw bad('the database name contains "/"');
  const database = decode(path.slice(1), () => bad('the database name has bad %-encoding'));
  if (database.includes('\0')) throw bad('the database name contains a NUL character');

  const settings: Record<Param, number> = {
    connectTimeoutMs: PARAMS.connectTimeoutMs.default,
    poolSize: PARAMS.poolSize.default,
  };
  const seen = new Set<string>();
  for (const [key, value] of new URLSearchParams(query.slice(1))) {
    if (!Object.hasOwn(PARAMS, key))
      throw bad(`unknown parameter "${key}"; allowed: ${Object.keys(PARAMS).join(', ')}`);
    if (seen.has(key)) throw bad(`parameter "${key}" is given twice`);
    seen.add(key);
    const spec = PARAMS[key as Param];
    const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!(n >= spec.min && n <= spec.max))
      throw bad(
        `${key} must be a whole number of ${spec.unit} from ${spec.min} to ${spec.max}, got ${JSON.stringify(value)}`,
      );
    settings[key as Param] = n;
  }

  const scheme = url.slice(0, url.indexOf(':')).toLowerCase();
  const who = user === undefined ? '' : `${encodeURIComponent(user)}${password === undefined ? '' : ':***'}@`;
  const location = `${scheme}://${who}${host.includes(':') ? `[${host}]` : host}:${port}/${encodeURIComponent(database)}`;
  return { kind, host, port, user, password, database, ...settings, location };
}

function decode(s: string, onError: () => Error): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw onError();
  }
}

function example(url: string): string {
  const scheme = url.slice(0, Math.max(0, url.indexOf(':'))).toLowerCase() || 'postgres';
  return `${scheme}://USER:PASSWORD@HOST:PORT/DATABASE[?connectTimeoutMs=N&poolSize=N]`;
}
