import { status } from '@grpc/grpc-js';
import { grpcError } from '../errors.js';

/**
 * Calls in flight in this process, by key (`volume:<id>`, `volume-name:<name>`, …). The CO
 * should never send two calls for one volume at once, but after a restart it may; then, in
 * `abort` mode, the second call fails at once with ABORTED (the spec's "operation pending for
 * volume"), and in `queue` mode it waits for the first to finish. Across processes, Cairn's own
 * per-object locks do the same (with a short lock timeout in `abort` mode).
 */
export class InFlight {
  private readonly tails = new Map<string, Promise<void>>();

  constructor(private readonly mode: 'abort' | 'queue') {}

  /** Runs `fn` holding every key (taken in sorted order, so two calls never deadlock). */
  async run<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    if (this.mode === 'abort') {
      const busy = sorted.find((k) => this.tails.has(k));
      if (busy !== undefined) {
        throw grpcError(
          status.ABORTED,
          `an operation on ${busy.replace(':', ' ')} is already in progress; retry later`,
        );
      }
    }
    const releases: Array<() => void> = [];
    try {
      for (const key of sorted) releases.push(await this.take(key));
      return await fn();
    } finally {
      for (const release of releases.reverse()) release();
    }
  }

  private async take(key: string): Promise<() => void> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    return () => {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    };
  }

  /** Keys held or waited for now (for tests and debugging). */
  get size(): number {
    return this.tails.size;
  }
}
