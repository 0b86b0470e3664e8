import assert from 'node:assert/strict';
import { readFile, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Client,
  credentials,
  type Metadata,
  Server,
  ServerCredentials,
  type ServiceError,
  type status,
} from '@grpc/grpc-js';
import { createLocalConnector } from '../../src/connectors/local.js';
import { createNodeService } from '../../src/csi/node.js';
import type { NodeDeps } from '../../src/csi/node-deps.js';
import { csiClient, csiService } from '../../src/csi/proto.js';
import { createRunner } from '../../src/exec/runner.js';
import { unsupported } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/logger.js';
import { run } from '../harness/exec.js';
import { listLoops } from '../harness/loops.js';

// Helpers the CSI node tests share: mounts and loop devices under a test directory (found from
// the system, not from the code under test), clean-up that works after any failure, and a
// Node service on a real gRPC server.

/** Mount points at or under `dir`, deepest first (from /proc/self/mountinfo). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const root = await realpath(dir).catch(() => dir);
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const points = text
    .split('\n')
    .filter(Boolean)
    .map((l) =>
      l.split(' ')[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))),
    )
    .filter((p) => p === root || p.startsWith(`${root}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/**
 * Loop devices backed by the file `path` or by files under the directory `path`, and loop devices
 * stacked on those (read-only views), views first.
 */
export async function loopsBehind(path: string): Promise<string[]> {
  const real = (await realpath(path).catch(() => path)).replace(/\/+$/, '');
  const loops = await listLoops();
  const direct = loops
    .filter((l) => l.backFile === real || l.backFile.startsWith(`${real}/`))
    .map((l) => l.name);
  const views = loops.filter((l) => direct.includes(l.backFile)).map((l) => l.name);
  return [...views, ...direct];
}

/**
 * {@link loopsBehind}, after waiting (up to 3 s) for at most `expected` to be left: a detached loop
 * device that udev still has open is cleared by the kernel a moment later (autoclear).
 */
export async function loopsLeft(path: string, expected = 0): Promise<string[]> {
  const deadline = Date.now() + 3_000;
  for (;;) {
    const loops = await loopsBehind(path);
    if (loops.length <= expected || Date.now() > deadline) return loops;
    await sleep(50);
  }
}

/** Lazily unmounts everything under `dir` and detaches every loop device behind it. Best effort. */
export async function cleanUpUnder(dir: string): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const mounts = await mountsUnder(dir);
    if (mounts.length === 0) break;
    for (const m of mounts) await run(['umount', '--lazy', m]).catch(() => {});
  }
  for (let round = 0; round < 5; round++) {
    const loops = await loopsBehind(dir);
    if (loops.length === 0) break;
    for (const l of loops) await run(['losetup', '--detach', l]).catch(() => {});
    await sleep(100);
  }
}

/** Asserts nothing is mounted under `dir` and no loop device is backed by a file there. */
export async function assertNothingLeft(dir: string): Promise<void> {
  assert.deepEqual(await mountsUnder(dir), [], `mounts left under ${dir}`);
  assert.deepEqual(await loopsLeft(dir), [], `loop devices left behind ${dir}`);
}

/**
 * True when this process may use CAP_SYS_RESOURCE, which online ext4 growth (EXT4_IOC_RESIZE_FS)
 * needs; some VMs and containers withhold it even from root.
 */
export async function hasCapSysResource(): Promise<boolean> {
  const text = await readFile('/proc/self/status', 'utf8');
  const eff = /^CapEff:\s*([0-9a-f]+)/m.exec(text)?.[1];
  return eff !== undefined && (BigInt(`0x${eff}`) & (1n << 24n)) !== 0n;
}

/** The NodeDeps of a test: the real runner and local connector. */
export function nodeDeps(stateDir: string, over: Partial<NodeDeps> = {}): NodeDeps {
  const runner = createRunner({ logger: silentLogger });
  const local = createLocalConnector(runner);
  return {
    nodeId: 'node-a',
    maxVolumesPerNode: 0,
    topology: { 'cairn.io/host': 'node-a' },
    defaultFsType: 'ext4',
    stateDir,
    runner,
    logger: silentLogger,
    connector(protocol) {
      if (protocol !== 'local') throw unsupported(`no connector for ${protocol}`);
      return local;
    },
    ...over,
  };
}

type Callback = (err: ServiceError | null, res: unknown) => void;
type Method = (req: unknown, md: Metadata | Callback, cb?: Callback) => void;

/** A promisified client: `await node.call('NodeStageVolume', req)`. */
export interface GrpcCaller {
  call<T = Record<string, unknown>>(method: string, req: unknown): Promise<T>;
  close(): void;
}

export function caller(client: Client): GrpcCaller {
  return {
    call<T>(method: string, req: unknown) {
      const fn = (client as unknown as Record<string, Method>)[method];
      if (!fn) throw new Error(`no method ${method}`);
      return new Promise<T>((resolve, reject) => {
        fn.call(client, req, (err: ServiceError | null, res: unknown) =>
          err ? reject(err) : resolve(res as T),
        );
      });
    },
    close: () => client.close(),
  };
}

/** The Node service alone on a real gRPC server, on a unix socket in `dir`. */
export async function startNodeServer(
  dir: string,
  deps: NodeDeps,
): Promise<{ node: GrpcCaller; stop(): Promise<void> }> {
  const server = new Server();
  server.addService(csiService('Node'), createNodeService(deps));
  const address = `unix://${join(dir, 'node.sock')}`;
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(address, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
  const Node = csiClient('Node');
  const node = caller(new Node(address, credentials.createInsecure()));
  return {
    node,
    async stop() {
      node.close();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    },
  };
}

/** Asserts that a call fails with gRPC `code` and a message that mentions each string. */
export async function rejectsGrpc(
  action: Promise<unknown>,
  code: status,
  ...mentions: string[]
): Promise<ServiceError> {
  let caught: unknown;
  try {
    await action;
  } catch (err) {
    caught = err;
  }
  if (caught === undefined) assert.fail(`expected gRPC status ${code}, but the call succeeded`);
  const e = caught as ServiceError;
  assert.equal(e.code, code, `wrong status ${e.code}; message: ${e.details ?? e.message}`);
  for (const m of mentions) assert.ok(e.details.includes(m), `message should mention ${m}: ${e.details}`);
  return e;
}

/** A VolumeCapability as a client sends it. */
export function mountCap(fsType = '', mode = 'SINGLE_NODE_WRITER', flags: string[] = []) {
  return { mount: { fs_type: fsType, mount_flags: flags }, access_mode: { mode } };
}
export function blockCap(mode = 'SINGLE_NODE_WRITER') {
  return { block: {}, access_mode: { mode } };
}
