import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { childScript } from './paths.js';

/** A test script running as a real `node` process, talking line by line on stdio. */
export interface Child {
  readonly process: ChildProcess;
  readonly pid: number;
  /** Resolves with the first line of stdout that satisfies `match` (seen before or later). */
  line(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Writes a line to the child's stdin. */
  send(line: string): void;
  /** Resolves when the child has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

const running = new Set<ChildProcess>();

/**
 * Kills (SIGKILL) every child still running. Call it from an `after` hook: a child left alive
 * holds its pipes open and keeps the whole test file from ending.
 */
export function killChildren(): void {
  for (const p of running) p.kill('SIGKILL');
}

/** Starts `dist/test/children/<name>.js` with `args`. */
export function spawnChild(name: string, args: readonly string[]): Child {
  const proc = spawn(process.execPath, [childScript(name), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(proc);
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let stderr = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d: string) => {
    stderr += d;
  });
  createInterface({ input: proc.stdout }).on('line', (l) => {
    lines.push(l);
    for (const w of waiters.splice(0)) w();
  });
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>(
    (resolve) => {
      proc.on('close', (code, signal) => {
        running.delete(proc);
        done = true;
        for (const w of waiters.splice(0)) w();
        resolve({ code, signal, stderr });
      });
    },
  );
  return {
    process: proc,
    pid: proc.pid ?? -1,
    exited,
    send(line) {
      proc.stdin.write(`${line}\n`);
    },
    line(match, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(
            new Error(
              `${name}: no matching line within ${timeoutMs} ms; stdout: ${lines.join(' | ')}; stderr: ${stderr}`,
            ),
          );
        }, timeoutMs);
        const check = () => {
          const found = lines.find(match);
          if (found !== undefined) {
            clearTimeout(timer);
            resolve(found);
          } else if (done) {
            clearTimeout(timer);
            reject(
              new Error(
                `${name} exited without a matching line; stdout: ${lines.join(' | ')}; stderr: ${stderr}`,
              ),
            );
          } else waiters.push(check);
        };
        check();
      });
    },
  };
}

/** Parses the first JSON line of a child's stdout that has `key`. */
export async function jsonLine<T>(child: Child, key: string, timeoutMs?: number): Promise<T> {
  const line = await child.line((l) => l.startsWith('{') && key in JSON.parse(l), timeoutMs);
  return JSON.parse(line) as T;
}
