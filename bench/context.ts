import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CaseResult } from './report.js';

/**
 * Things to undo (unmount, detach a loop device, remove a temp dir), run newest first. They are
 * synchronous so they can also run from an exit or signal handler when a run is interrupted.
 */
export class Cleanup {
  private readonly stack: Array<{ what: string; fn: () => void }> = [];

  /** Registers `fn`; the returned function runs it now (once) and forgets it. */
  add(what: string, fn: () => void): () => void {
    const entry = { what, fn };
    this.stack.push(entry);
    return () => {
      const i = this.stack.indexOf(entry);
      if (i < 0) return;
      this.stack.splice(i, 1);
      fn();
    };
  }

  /** Runs everything still registered, newest first; returns what failed instead of throwing. */
  runAll(): string[] {
    const failed: string[] = [];
    while (this.stack.length > 0) {
      const entry = this.stack.pop()!;
      try {
        entry.fn();
      } catch (err) {
        failed.push(`${entry.what}: ${(err as Error).message}`);
      }
    }
    return failed;
  }
}

/** What a benchmark gets from the runner. */
export interface BenchContext {
  /** Fewer iterations and less data: a smoke test of the harness. */
  quick: boolean;
  /** The repository root (holds package.json and dist/). */
  repoRoot: string;
  cleanup: Cleanup;
  /** A fresh directory under the system temp dir, removed at the end (or on failure). */
  tempDir(prefix: string): { path: string; remove(): void };
  /** Progress for the person watching (stderr). */
  log(message: string): void;
}

/** A benchmark: one file in bench/, one or more cases. */
export interface Benchmark {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<CaseResult[]>;
}

/** Makes the context the runner passes to every benchmark. */
export function createContext(opts: { quick: boolean; repoRoot: string; verbose: boolean }): BenchContext {
  const cleanup = new Cleanup();
  return {
    quick: opts.quick,
    repoRoot: opts.repoRoot,
    cleanup,
    tempDir(prefix) {
      const path = mkdtempSync(join(tmpdir(), `cairn-bench-${prefix}-`));
      const remove = cleanup.add(`removing ${path}`, () =>
        rmSync(path, { recursive: true, force: true, maxRetries: 3 }),
      );
      return { path, remove };
    },
    log(message) {
      if (opts.verbose) process.stderr.write(`  ${message}\n`);
    },
  };
}
