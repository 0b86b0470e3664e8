import { createHash, randomUUID } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { mkdir, open, readFile, rmdir, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { busy } from '../util/errors.js';
import { ensurePrivateDir, hasCode } from '../util/fsx.js';

/** What a lock file records about its holder. */
interface Holder {
  key: string;
  token: string;
  pid: number;
  host: string;
  /** The holder process's start time (from /proc), to tell a reused pid from the holder. */
  start: string | null;
  /** The holder's pid namespace: a pid means something only inside its own namespace. */
  ns: string | null;
  since: string;
}

/** Options of {@link LockManager}. */
export interface LockOptions {
  /**
   * Directory of lock files shared by every process on this host that uses the same state;
   * null for locks within this context only (a `memory:` state is private to its context).
   */
  dir: string | null;
  /** How long to wait for a lock before failing with BUSY. Default 5 minutes. */
  timeoutMs?: number;
}

/** Takes a lock held outside this process until the returned release runs; waits until `deadline`. */
export type SharedLock = (key: string, deadline: number) => Promise<() => Promise<void>>;

/**
 * Per-object locks that hold within a process and across processes on one host.
 *
 * Within a context, waiters queue on a promise chain. Across contexts and processes, a lock is
 * a file created with O_EXCL naming its holder; a holder that died (its pid gone, or reused by
 * a process that started later) is detected and its lock broken, so a kill -9 never wedges
 * the state.
 */
export class LockManager {
  readonly dir: string | null;
  readonly timeoutMs: number;
  private readonly queues = new Map<string, Promise<void>>();
  private readonly host = hostname();
  private readonly myStart = processStartTime(process.pid);
  private readonly myNs = pidNamespace();
  private dirReady: Promise<void> | undefined;
  private shared: SharedLock | undefined;

  constructor(options: LockOptions) {
    this.dir = options.dir;
    this.timeoutMs = options.timeoutMs ?? 300_000;
  }

  /**
   * Takes locks through `lock` (a state store's, shared across hosts) instead of lock files
   * from now on.
   */
  useSharedLock(lock: SharedLock): void {
    this.shared = lock;
  }

  /** Runs `fn` while holding every lock in `keys` (taken in sorted order to avoid deadlock). */
  async withLocks<T>(
    keys: readonly string[],
    fn: () => Promise<T>,
    opts: { timeoutMs?: number } = {},
  ): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const deadline = Date.now() + (opts.timeoutMs ?? this.timeoutMs);
    const releases: Array<() => Promise<void>> = [];
    try {
      for (const key of sorted) releases.push(await this.acquire(key, deadline));
      return await fn();
    } finally {
      for (const release of releases.reverse()) await release();
    }
  }

  private async acquire(key: string, deadline: number): Promise<() => Promise<void>> {
    // In-process queue first: only the head of the queue touches the file system.
    const previous = this.queues.get(key) ?? Promise.resolve();
    let releaseLocal!: () => void;
    const mine = new Promise<void>((resolve) => {
      releaseLocal = resolve;
    });
    const tail = previous.then(() => mine);
    this.queues.set(key, tail);
    try {
      await raceDeadline(previous, deadline, key);
      const releaseFile = this.shared
        ? await this.shared(key, deadline)
        : this.dir === null
          ? async () => {}
          : await this.acquireFile(key, deadline, this.dir);
      return async () => {
        await releaseFile();
        releaseLocal();
        if (this.queues.get(key) === tail) this.queues.delete(key);
      };
    } catch (err) {
      releaseLocal();
      if (this.queues.get(key) === tail) this.queues.delete(key);
      throw err;
    }
  }

  private async acquireFile(key: string, deadline: number, dir: string): Promise<() => Promise<void>> {
    this.dirReady ??= ensurePrivateDir(dir);
    await this.dirReady;
    const path = join(dir, `${createHash('sha256').update(key).digest('hex').slice(0, 40)}.lock`);
    const me: Holder = {
      key,
      token: randomUUID(),
      pid: process.pid,
      host: this.host,
      start: this.myStart,
      ns: this.myNs,
      since: new Date().toISOString(),
    };
    let delay = 2;
    for (;;) {
      try {
        const fh = await open(path, 'wx', 0o600);
        try {
          await fh.writeFile(JSON.stringify(me));
        } finally {
          await fh.close();
        }
        return () => this.releaseFile(path);
      } catch (err) {
        if (!hasCode(err, 'EEXIST')) throw err;
      }
      const holder = await readHolder(path);
      if (holder === 'gone') continue;
      if (holder === 'unreadable' || !this.isAlive(holder)) {
        if (await this.breakStale(path, holder)) continue;
      }
      if (Date.now() >= deadline) {
        const who =
          typeof holder === 'object' ? ` by pid ${holder.pid} on ${holder.host} since ${holder.since}` : '';
        throw busy(`"${key}" is locked${who}; gave up waiting`, { details: { key } });
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 50);
    }
  }

  private isAlive(holder: Holder): boolean {
    // Another host's or pid namespace's processes can't be seen from here: trust the lock.
    if (holder.host !== this.host || (holder.ns ?? null) !== this.myNs) return true;
    try {
      process.kill(holder.pid, 0);
    } catch (err) {
      if (hasCode(err, 'ESRCH')) return false;
    }
    const start = processStartTime(holder.pid);
    return holder.start === null || start === null || start === holder.start;
  }

  /**
   * Removes a dead holder's lock. A short-lived breaker directory makes sure two processes
   * that both saw the stale lock don't remove a fresh one the other has just taken.
   */
  private async breakStale(path: string, seen: Holder | 'unreadable'): Promise<boolean> {
    const breaker = `${path}.break`;
    try {
      await mkdir(breaker);
    } catch (err) {
      if (!hasCode(err, 'EEXIST')) throw err;
      const age = await stat(breaker).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > 10_000) await rmdir(breaker).catch(() => {});
      return false;
    }
    try {
      const now = await readHolder(path);
      const same =
        now === 'unreadable'
          ? seen === 'unreadable'
          : now !== 'gone' && seen !== 'unreadable' && now.token === seen.token;
      if (same) await unlink(path).catch(() => {});
      return true;
    } finally {
      await rmdir(breaker).catch(() => {});
    }
  }

  private async releaseFile(path: string): Promise<void> {
    // Our lock can't have been broken: only a dead holder's lock is broken, and we are alive.
    await unlink(path).catch(() => {});
  }
}

async function readHolder(path: string): Promise<Holder | 'gone' | 'unreadable'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (hasCode(err, 'ENOENT')) return 'gone';
    throw err;
  }
  try {
    const h = JSON.parse(text) as Holder;
    return typeof h.token === 'string' && typeof h.pid === 'number' ? h : 'unreadable';
  } catch {
    // A holder may be between creating the file and writing it: only call it unreadable when old.
    const age = await stat(path).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    return age > 2_000
      ? 'unreadable'
      : { key: '', token: '', pid: process.pid, host: '', start: null, ns: null, since: '' };
  }
}

async function raceDeadline(p: Promise<void>, deadline: number, key: string): Promise<void> {
  const ms = deadline - Date.now();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(busy(`"${key}" is locked by another operation of this process; gave up waiting`)),
      Math.max(0, ms),
    );
  });
  try {
    await Promise.race([p, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** This process's pid namespace (e.g. `pid:[4026531836]`), or null off Linux. */
function pidNamespace(): string | null {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return null;
  }
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot), or null off Linux. */
function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const afterComm = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return afterComm[19] ?? null;
  } catch {
    return null;
  }
}
