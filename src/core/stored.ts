import { type Engine, mustGet } from './engine.js';
import type { AnyRecord } from './records.js';

/**
 * What volumes, snapshots and connections have in common: a view of one record in the state
 * store, with the fields every record has.
 */
export abstract class Stored<R extends AnyRecord> {
  /** @internal */
  readonly engine: Engine;
  /** @internal The record as last read or written by this object. */
  protected rec: R;

  /** @internal */
  constructor(engine: Engine, record: R) {
    this.engine = engine;
    this.rec = record;
  }

  /** Unique id (a UUID unless chosen at creation). */
  get id(): string {
    return this.rec.id;
  }
  /** The name, unique per backend and kind, or null. */
  get name(): string | null {
    return this.rec.name;
  }
  /** Free text given at creation, or null. */
  get description(): string | null {
    return this.rec.description;
  }
  /** Life-cycle state (see the README's life-cycle table). */
  get status(): R['status'] {
    return this.rec.status;
  }
  /** Name of the backend the object lives on. */
  get backendName(): string {
    return this.rec.backend;
  }
  /** User metadata (a copy). */
  get metadata(): Record<string, string> {
    return { ...this.rec.metadata };
  }
  /** The last failed operation on this object, or null. */
  get lastError(): R['lastError'] {
    return this.rec.lastError;
  }
  /** Creation time, ISO 8601. */
  get createdAt(): string {
    return this.rec.createdAt;
  }
  /** A copy of the stored record (secrets included). */
  get record(): R {
    return structuredClone(this.rec);
  }

  /** Re-reads the object from the state store. @throws CairnError NOT_FOUND once it is gone */
  async refresh(): Promise<this> {
    this.rec = (await mustGet(this.engine, this.rec.kind, this.rec.id)) as unknown as R;
    return this;
  }
}
