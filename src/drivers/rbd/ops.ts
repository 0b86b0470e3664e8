import type { CephPoolDf, RbdChild, RbdDu, RbdImageInfo, RbdListEntry } from '../../parse/rbd.js';

/** An image anywhere on the cluster (a parent or a child may live in another pool or namespace). */
export interface ImageSpec {
  pool: string;
  namespace: string;
  image: string;
}

/**
 * The RBD operations the driver uses, on one pool (and namespace). Two implementations: the
 * `rbd`/`ceph` command-line tools (cli-ops.ts) and librbd in-process (native-ops.ts). Both map
 * failures the same way: NOT_FOUND, ALREADY_EXISTS, TIMEOUT (`details.connected: false` when
 * the cluster was never reached) and `details.exitCode` = the errno (e.g. ENOTEMPTY).
 */
export interface RbdOps {
  /** `cli` or `librbd`: which path is in use (shown in logs and benchmarks). */
  readonly kind: 'cli' | 'librbd';
  /** Throws NOT_FOUND when the pool or namespace does not exist. */
  checkPool(): Promise<void>;
  /** Every image with its size, and every user snapshot of it (`snapshot` set). */
  list(): Promise<RbdListEntry[]>;
  info(image: string): Promise<RbdImageInfo>;
  /** Info of an image elsewhere (a parent). */
  infoOf(spec: ImageSpec): Promise<RbdImageInfo>;
  create(image: string, size: number, features: readonly string[] | undefined): Promise<void>;
  remove(image: string): Promise<void>;
  resize(image: string, size: number): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  snapCreate(image: string, snap: string): Promise<void>;
  snapRemove(image: string, snap: string): Promise<void>;
  /** Removes every user snapshot (those with clones go to the trash namespace). */
  snapPurge(image: string): Promise<void>;
  snapRollback(image: string, snap: string): Promise<void>;
  /** A clone v2 of `image@snap` named `dest` in this pool/namespace. */
  clone(image: string, snap: string, dest: string, features: readonly string[] | undefined): Promise<void>;
  flatten(spec: ImageSpec): Promise<void>;
  /** Clones of every snapshot of the image, trashed snapshots included. */
  children(image: string): Promise<RbdChild[]>;
  trashMove(image: string): Promise<void>;
  /** Removes trashed images whose clones are gone; failures for the others are ignored. */
  trashPurge(): Promise<void>;
  du(): Promise<RbdDu>;
  poolDf(): Promise<CephPoolDf>;
  close(): Promise<void>;
}
