/**
 * Throwaway databases on the PostgreSQL and MariaDB servers of this machine
 * (scripts/ensure-databases.sh starts them), made and dropped with the servers' own command-line
 * clients — synchronously, so the drop can also run from the runner's exit handler.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { BenchContext } from './context.js';

export type ServerKind = 'postgres' | 'mysql';

function sqlOn(kind: ServerKind, statement: string): void {
  const argv =
    kind === 'postgres'
      ? [
          'psql',
          '-h',
          '127.0.0.1',
          '-p',
          '5432',
          '-U',
          'root',
          '-d',
          'postgres',
          '-v',
          'ON_ERROR_STOP=1',
          '-q',
          '-c',
          statement,
        ]
      : ['mariadb', '-h', '127.0.0.1', '-P', '3306', '-u', 'root', '-e', statement];
  execFileSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
}

/** Creates a database for one benchmark case; returns its state URL. Dropped at clean-up. */
export function throwawayDatabase(ctx: BenchContext, kind: ServerKind): { url: string; drop(): void } {
  const name = `cairn_bench_${randomBytes(6).toString('hex')}`;
  sqlOn(kind, `create database ${name}`);
  const drop = ctx.cleanup.add(`dropping database ${name}`, () =>
    sqlOn(
      kind,
      kind === 'postgres'
        ? `drop database if exists ${name} with (force)`
        : `drop database if exists ${name}`,
    ),
  );
  const url =
    kind === 'postgres' ? `postgres://root@127.0.0.1:5432/${name}` : `mysql://root@127.0.0.1:3306/${name}`;
  return { url, drop };
}
