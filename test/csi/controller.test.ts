import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import {
  blockCap,
  createRequest,
  GiB,
  MiB,
  mountCap,
  type Plugin,
  rejectsCode,
  startPlugin,
} from './client.js';

const HOST = hostname();
const KEY = 'topology.csi.cairn.io/host';
const pvc = () => `pvc-${randomUUID()}`;

let p: Plugin;
before(async () => {
  p = await startPlugin();
});
after(() => p.stop());

const cairn = () => p.server.cairn!;
const fileOf = (backend: 'pool' | 'thick', id: string) =>
  join(p.sandbox.backendDirs[backend], `volume-${id}`);

describe('CreateVolume', () => {
  it('creates a volume named as the CO asks, with its size, context and topology', async () => {
    const name = pvc();
    const { volume } = await p.controller('CreateVolume', createRequest(name, 10 * MiB));
    assert.equal(volume.capacity_bytes, String(10 * MiB));
    assert.deepEqual(volume.volume_context, { backend: 'pool' });
    assert.deepEqual(volume.accessible_topology, [{ segments: { [KEY]: HOST } }]);
    assert.equal(volume.content_source, null);
    const v = await cairn().volume(volume.volume_id);
    assert.equal(v.name, name);
    assert.equal(v.backendName, 'pool');
    assert.equal(v.status, 'available');
    assert.equal(v.metadata['csi.cairn.io/name'], name);
    assert.equal((await stat(fileOf('pool', v.id))).size, 10 * MiB);
  });

  it('is idempotent: the same name and arguments give the same volume', async () => {
    const name = pvc();
    const a = await p.controller('CreateVolume', createRequest(name));
    const b = await p.controller('CreateVolume', createRequest(name));
    assert.equal(b.volume.volume_id, a.volume.volume_id);
    assert.equal((await cairn().volumes({ name })).length, 1);
    // A range the existing size satisfies is compatible too.
    const c = await p.controller('CreateVolume', {
      ...createRequest(name),
      capacity_range: { required_bytes: String(MiB), limit_bytes: String(64 * MiB) },
    });
    assert.equal(c.volume.volume_id, a.volume.volume_id);
  });

  it('ALREADY_EXISTS for the same name with another size, backend or capability it cannot serve', async () => {
    const name = pvc();
    await p.controller('CreateVolume', createRequest(name, 16 * MiB));
    await rejectsCode(
      p.controller('CreateVolume', createRequest(name, 32 * MiB)),
      status.ALREADY_EXISTS,
      /16777216 bytes/,
    );
    await rejectsCode(
      p.controller('CreateVolume', { ...createRequest(name, 16 * MiB), parameters: { backend: 'thick' } }),
      status.ALREADY_EXISTS,
      /backend "pool".*"thick"/,
    );
    assert.equal((await cairn().volumes({ name })).length, 1);
  });

  it('ALREADY_EXISTS when the name belongs to a volume not made for that CSI name', async () => {
    await cairn().backend('pool').createVolume({ size: MiB, name: 'taken-by-cli' });
    await rejectsCode(
      p.controller('CreateVolume', createRequest('taken-by-cli')),
      status.ALREADY_EXISTS,
      /not created for CSI name/,
    );
  });

  it('INVALID_ARGUMENT naming each missing required field', async () => {
    await rejectsCode(
      p.controller('CreateVolume', { volume_capabilities: [mountCap()] }),
      status.INVALID_ARGUMENT,
      /^name: is required/,
    );
    await rejectsCode(
      p.controller('CreateVolume', { name: pvc() }),
      status.INVALID_ARGUMENT,
      /^volume_capabilities: is required/,
    );
    await rejectsCode(
      p.controller('CreateVolume', {
        name: pvc(),
        volume_capabilities: [{ access_mode: { mode: 'SINGLE_NODE_WRITER' } }],
      }),
      status.INVALID_ARGUMENT,
      /volume_capabilities\[0\]\.access_type: is required/,
    );
    await rejectsCode(
      p.controller('CreateVolume', { name: pvc(), volume_capabilities: [mountCap(), { mount: {} }] }),
      status.INVALID_ARGUMENT,
      /volume_capabilities\[1\]\.access_mode\.mode: is required/,
    );
    await rejectsCode(
      p.controller('CreateVolume', {
        name: pvc(),
        volume_capabilities: [mountCap()],
        volume_content_source: { snapshot: { snapshot_id: '' } },
      }),
      status.INVALID_ARGUMENT,
      /volume_content_source\.snapshot\.snapshot_id: is required/,
    );
  });

  it('INVALID_ARGUMENT for an unknown parameter; keeps Kubernetes metadata parameters', async () => {
    await rejectsCode(
      p.controller('CreateVolume', { ...createRequest(pvc()), parameters: { color: 'blue' } }),
      status.INVALID_ARGUMENT,
      /parameters\.color: unknown parameter \(supported: backend/,
    );
    const { volume } = await p.controller('CreateVolume', {
      ...createRequest(pvc()),
      parameters: { 'csi.storage.k8s.io/pvc/name': 'data', 'csi.storage.k8s.io/pvc/namespace': 'db' },
    });
    const v = await cairn().volume(volume.volume_id);
    assert.equal(v.metadata['csi.storage.k8s.io/pvc/name'], 'data');
    assert.equal(v.metadata['csi.storage.k8s.io/pvc/namespace'], 'db');
  });

  it('parameters.backend chooses the backend; an unknown one is INVALID_ARGUMENT', async () => {
    const { volume } = await p.controller('CreateVolume', {
      ...createRequest(pvc()),
      parameters: { backend: 'thick' },
    });
    assert.deepEqual(volume.volume_context, { backend: 'thick' });
    assert.equal((await stat(fileOf('thick', volume.volume_id))).blocks * 512 >= 16 * MiB, true);
    await rejectsCode(
      p.controller('CreateVolume', { ...createRequest(pvc()), parameters: { backend: 'nope' } }),
      status.INVALID_ARGUMENT,
      /parameters\.backend: unknown backend "nope" \(configured: pool, thick\)/,
    );
  });

  it('honours capacity_range: rounds up to the backend unit, never past the limit', async () => {
    const make = async (range: object | null) =>
      (
        await p.controller('CreateVolume', {
          name: pvc(),
          volume_capabilities: [mountCap()],
          capacity_range: range,
        })
      ).volume.capacity_bytes;
    assert.equal(await make({ required_bytes: '1' }), String(MiB));
    assert.equal(await make({ required_bytes: String(3 * MiB + 5) }), String(4 * MiB));
    assert.equal(await make({ limit_bytes: String(5 * MiB + 1) }), String(5 * MiB));
    assert.equal(
      await make({ required_bytes: String(2 * MiB), limit_bytes: String(2 * MiB) }),
      String(2 * MiB),
    );
    assert.equal(await make(null), String(GiB));
    await rejectsCode(
      make({ required_bytes: '1', limit_bytes: '1000' }),
      status.OUT_OF_RANGE,
      /allocation unit/,
    );
    await rejectsCode(
      make({ required_bytes: String(3 * MiB + 1), limit_bytes: String(3 * MiB + 2) }),
      status.OUT_OF_RANGE,
    );
    await rejectsCode(
      make({ required_bytes: '10', limit_bytes: '5' }),
      status.INVALID_ARGUMENT,
      /larger than limit_bytes/,
    );
    await rejectsCode(
      make({ required_bytes: '-1' }),
      status.INVALID_ARGUMENT,
      /required_bytes: must not be negative/,
    );
    await rejectsCode(make({ required_bytes: '9007199254740993' }), status.OUT_OF_RANGE);
  });

  it('checks access modes: several nodes need multi-attach, several writers a block volume', async () => {
    const create = (cap: object) =>
      p.controller('CreateVolume', { ...createRequest(pvc()), volume_capabilities: [cap] });
    await rejectsCode(
      create(blockCap('MULTI_NODE_MULTI_WRITER')),
      status.INVALID_ARGUMENT,
      /has no multi-attach/,
    );
    await rejectsCode(create(mountCap('MULTI_NODE_READER_ONLY')), status.INVALID_ARGUMENT, /multi-attach/);
    await rejectsCode(
      create(mountCap('SINGLE_NODE_WRITER', 'zfs')),
      status.INVALID_ARGUMENT,
      /file system "zfs"/,
    );
    for (const mode of ['SINGLE_NODE_READER_ONLY', 'SINGLE_NODE_SINGLE_WRITER', 'SINGLE_NODE_MULTI_WRITER']) {
      await create(mountCap(mode, 'xfs'));
      await create(blockCap(mode));
    }
  });

  it('INVALID_ARGUMENT for mutable_parameters (no MODIFY_VOLUME) and names with control characters', async () => {
    await rejectsCode(
      p.controller('CreateVolume', { ...createRequest(pvc()), mutable_parameters: { iops: '100' } }),
      status.INVALID_ARGUMENT,
      /^mutable_parameters:/,
    );
    await rejectsCode(
      p.controller('CreateVolume', createRequest('bad\u0007name')),
      status.INVALID_ARGUMENT,
      /^name: contains control/,
    );
  });

  it('maps a CSI name Cairn does not allow to a stable one and keeps the original', async () => {
    const name = 'my volume/é';
    const a = await p.controller('CreateVolume', createRequest(name));
    const b = await p.controller('CreateVolume', createRequest(name));
    assert.equal(b.volume.volume_id, a.volume.volume_id);
    const v = await cairn().volume(a.volume.volume_id);
    assert.match(v.name!, /^csi-[0-9a-f]{40}$/);
    assert.equal(v.metadata['csi.cairn.io/name'], name);
  });

  it('honours accessibility requirements: RESOURCE_EXHAUSTED when the requisites exclude the host', async () => {
    const here = { segments: { [KEY]: HOST } };
    const there = { segments: { [KEY]: 'elsewhere' } };
    const ok = await p.controller('CreateVolume', {
      ...createRequest(pvc()),
      accessibility_requirements: { requisite: [there, here], preferred: [there] },
    });
    assert.deepEqual(ok.volume.accessible_topology, [here]);
    await p.controller('CreateVolume', {
      ...createRequest(pvc()),
      accessibility_requirements: { preferred: [there] },
    });
    await rejectsCode(
      p.controller('CreateVolume', {
        ...createRequest(pvc()),
        accessibility_requirements: { requisite: [there] },
      }),
      status.RESOURCE_EXHAUSTED,
      /elsewhere/,
    );
    await rejectsCode(
      p.controller('CreateVolume', {
        ...createRequest(pvc()),
        accessibility_requirements: { requisite: [{ segments: { zone: 'a' } }] },
      }),
      status.INVALID_ARGUMENT,
      /unknown topology key "zone"/,
    );
    // An existing volume asked for somewhere it is not: the spec's ALREADY_EXISTS.
    const name = pvc();
    await p.controller('CreateVolume', createRequest(name));
    await rejectsCode(
      p.controller('CreateVolume', {
        ...createRequest(name),
        accessibility_requirements: { requisite: [there] },
      }),
      status.ALREADY_EXISTS,
    );
  });

  it('recovers a volume a dead process left creating, instead of answering ABORTED forever', async () => {
    const name = pvc();
    const now = new Date().toISOString();
    await cairn().store.put({
      kind: 'volume',
      id: randomUUID(),
      backend: 'pool',
      name,
      description: null,
      metadata: { 'csi.cairn.io/name': name },
      lastError: null,
      version: 0,
      createdAt: now,
      updatedAt: now,
      driverData: {},
      status: 'creating',
      attachStatus: 'detached',
      size: 16 * MiB,
      sourceVolumeId: null,
      sourceSnapshotId: null,
      extraSpecs: {},
      multiattach: false,
    });
    const { volume } = await p.controller('CreateVolume', createRequest(name));
    const v = await cairn().volume(volume.volume_id);
    assert.equal(v.status, 'available');
    assert.equal((await cairn().volumes({ name })).length, 1);
  });

  it('never logs secrets', async () => {
    const secret = `s3cr3t-${randomUUID()}`;
    const name = pvc();
    await p.controller('CreateVolume', { ...createRequest(name), secrets: { password: secret } });
    await rejectsCode(
      p.controller('CreateVolume', { ...createRequest(name, 64 * MiB), secrets: { password: secret } }),
      status.ALREADY_EXISTS,
    );
    await rejectsCode(
      p.controller('CreateVolume', {
        name: pvc(),
        volume_capabilities: [
          { mount: { mount_flags: [secret] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } },
        ],
        parameters: { color: 'x' },
        secrets: { token: secret },
      }),
      status.INVALID_ARGUMENT,
    );
    const log = p.logger.lines.join('\n');
    assert.ok(log.includes('CreateVolume'), 'calls are logged');
    assert.ok(!log.includes(secret), 'a secret reached the log');
  });
});

describe('DeleteVolume', () => {
  it('deletes the volume and its file; an unknown id is OK', async () => {
    const { volume } = await p.controller('CreateVolume', createRequest(pvc()));
    await p.controller('DeleteVolume', { volume_id: volume.volume_id });
    assert.deepEqual(await cairn().volumes({ id: volume.volume_id }), []);
    await assert.rejects(stat(fileOf('pool', volume.volume_id)), { code: 'ENOENT' });
    await p.controller('DeleteVolume', { volume_id: volume.volume_id });
    await p.controller('DeleteVolume', { volume_id: 'no-such-volume' });
  });

  it('INVALID_ARGUMENT without volume_id; FAILED_PRECONDITION while published', async () => {
    await rejectsCode(p.controller('DeleteVolume', {}), status.INVALID_ARGUMENT, /^volume_id: is required/);
    const { volume } = await p.controller('CreateVolume', createRequest(pvc()));
    await p.controller('ControllerPublishVolume', {
      volume_id: volume.volume_id,
      node_id: HOST,
      volume_capability: mountCap(),
    });
    await rejectsCode(
      p.controller('DeleteVolume', { volume_id: volume.volume_id }),
      status.FAILED_PRECONDITION,
      /connected/,
    );
    await p.controller('ControllerUnpublishVolume', { volume_id: volume.volume_id, node_id: HOST });
    await p.controller('DeleteVolume', { volume_id: volume.volume_id });
  });
});

describe('ControllerPublishVolume and ControllerUnpublishVolume', () => {
  const publish = (volume_id: string, extra: object = {}) =>
    p.controller('ControllerPublishVolume', {
      volume_id,
      node_id: HOST,
      volume_capability: mountCap(),
      ...extra,
    });

  it('connects the volume to the node; publish_context carries the connection', async () => {
    const { volume } = await p.controller('CreateVolume', createRequest(pvc()));
    const res = await publish(volume.volume_id);
    assert.equal(res.publish_context['cairn.io/protocol'], 'local');
    const data = JSON.parse(res.publish_context['cairn.io/data']);
    assert.equal(data.path, fileOf('pool', volume.volume_id));
    assert.equal(data.readOnly, false);
    const conns = await cairn().connections({ volumeId: volume.volume_id });
    assert.equal(conns.length, 1);
    assert.equal(conns[0]!.host, HOST);
    assert.equal(conns[0]!.mode, 'rw');
    assert.equal((await cairn().volume(volume.volume_id)).status, 'in-use');
    // Idempotent.
    assert.deepEqual(await publish(volume.volume_id), res);
    assert.equal((await cairn().connections({ volumeId: volume.volume_id })).length, 1);
  });

  it('ALREADY_EXISTS when published to the node with another readonly flag', async () => {
    const { volume } = await p.controller('CreateVolume', createRequest(pvc()));
    await publish(volume.volume_id);
    await rejectsCode(publish(volume.volume_id, { readonly: true }), status.ALREADY_EXISTS, /read-write/);
  });

  it('publishes read-only for readonly and for reader-only access modes', async () => {
    const a = (await p.controller('CreateVolume', createRequest(pvc()))).volume.volume_id;
    const res = await publish(a, { readonly: true });
    assert.equal(JSON.parse(res.publish_context['cairn.io/data']).readOnly, true);
    assert.equal((await cairn().connections({ volumeId: a }))[0]!.mode, 'ro');
    const b = (await p.controller('CreateVolume', createRequest(pvc()))).volume.volume_id;
    await publish(b, { volume_capability: mountCap('SINGLE_NODE_READER_ONLY') });
    assert.equal((await cairn().connections({ volumeId: b }))[0]!.mode, 'ro');
  });

  it('FAILED_PRECONDITION when published to another node; NOT_FOUND for an unknown volume or node', async () => {
    const { volume } = await p.controller('CreateVolume', createRequest(pvc()));
    await publish(volume.volume_id);
    const err = await rejectsCode(
      publish(volume.volume_id, { node_id: 'node-b' }),
      status.FAILED_PRECONDITION,
    );
    assert.ok(err.details.includes(HOST), 'the message names the node it is published to');
    await rejectsCode(publish('no-such-volume'), status.NOT_FOUND, /volume no-such-volume not found/);
    const other = (await p.controller('CreateVolume', createRequest(pvc()))).volume.volume_id;
    await rejectsCode(
      publish(other, { node_id: 'node-b' }),
      status.NOT_FOUND,
      /node "node-b" is not reachable/,
    );
    assert.equal((await cairn().connections({ volumeId: other })).length, 0);
  });

  it('INVALID_ARGUMENT for missing fields, a capability the volume cannot serve, or another backend in volume_context', async () => {
    const { volume } = await p.controller('CreateVolume', createRequest(pvc()));
    const id = volume.volume_id;
    await rejectsCode(
      p.controller('ControllerPublishVolume', { node_id: HOST, volume_capability: mountCap() }),
      status.INVALID_ARGUMENT,
      /^volume_id/,
    );
    await rejectsCode(
      p.controller('ControllerPublishVolume', { volume_id: id, volume_capability: mountCap() }),
      status.INVALID_ARGUMENT,
      /^node_id/,
    );
    await rejectsCode(
      p.controller('ControllerPublishVolume', { volume_id: id, node_id: HOST }),
      status.INVALID_ARGUMENT,
      /^volume_capability: is required/,
    );
    await rejectsCode(
      publish(id, { volume_capability: blockCap('MULTI_NODE_MULTI_WRITER') }),
      status.INVALID_ARGUMENT,
      /multi-attach/,
    );
    await rejectsCode(
      publish(id, { volume_context: { backend: 'thick' } }),
      status.INVALID_ARGUMENT,
      /volume_context/,
    );
    assert.equal((await cairn().connections({ volumeId: id })).length, 0);
  });

  it('unpublish removes the connection and is idempotent; an empty node_id means every node', async () => {
    const { volume } = await p.controller('CreateVolume', createRequest(pvc()));
    const id = volume.volume_id;
    await publish(id);
    await p.controller('ControllerUnpublishVolume', { volume_id: id, node_id: 'node-b' });
    assert.equal((await cairn().connections({ volumeId: id })).length, 1, 'another node leaves it alone');
    await p.controller('ControllerUnpublishVolume', { volume_id: id, node_id: HOST });
    assert.equal((await cairn().connections({ volumeId: id })).length, 0);
    assert.equal((await cairn().volume(id)).status, 'available');
    await p.controller('ControllerUnpublishVolume', { volume_id: id, node_id: HOST });
    await publish(id);
    await p.controller('ControllerUnpublishVolume', { volume_id: id });
    assert.equal((await cairn().connections({ volumeId: id })).length, 0);
    await p.controller('ControllerUnpublishVolume', { volume_id: 'no-such-volume', node_id: HOST });
    await rejectsCode(
      p.controller('ControllerUnpublishVolume', { node_id: HOST }),
      status.INVALID_ARGUMENT,
      /^volume_id/,
    );
  });

  it('RESOURCE_EXHAUSTED past CAIRN_CSI_MAX_VOLUMES_PER_NODE', async () => {
    const q = await startPlugin({ CAIRN_CSI_MAX_VOLUMES_PER_NODE: '1' });
    try {
      const a = (await q.controller('CreateVolume', createRequest(pvc()))).volume.volume_id;
      const b = (await q.controller('CreateVolume', createRequest(pvc()))).volume.volume_id;
      await q.controller('ControllerPublishVolume', {
        volume_id: a,
        node_id: HOST,
        volume_capability: mountCap(),
      });
      await q.controller('ControllerPublishVolume', {
        volume_id: a,
        node_id: HOST,
        volume_capability: mountCap(),
      });
      await rejectsCode(
        q.controller('ControllerPublishVolume', {
          volume_id: b,
          node_id: HOST,
          volume_capability: mountCap(),
        }),
        status.RESOURCE_EXHAUSTED,
        /CAIRN_CSI_MAX_VOLUMES_PER_NODE=1/,
      );
    } finally {
      await q.stop();
    }
  });
});

describe('ValidateVolumeCapabilities', () => {
  it('confirms what the volume supports and says why not otherwise', async () => {
    const { volume } = await p.controller('CreateVolume', createRequest(pvc()));
    const id = volume.volume_id;
    const caps = [mountCap('SINGLE_NODE_WRITER', 'ext4'), blockCap('SINGLE_NODE_READER_ONLY')];
    const ok = await p.controller('ValidateVolumeCapabilities', {
      volume_id: id,
      volume_context: volume.volume_context,
      volume_capabilities: caps,
      parameters: { backend: 'pool' },
    });
    assert.ok(ok.confirmed);
    assert.equal(ok.confirmed.volume_capabilities.length, 2);
    assert.equal(ok.confirmed.volume_capabilities[0].mount.fs_type, 'ext4');
    assert.deepEqual(ok.confirmed.parameters, { backend: 'pool' });
    const refused = async (req: object, why: RegExp) => {
      const res = await p.controller('ValidateVolumeCapabilities', {
        volume_id: id,
        volume_capabilities: caps,
        ...req,
      });
      assert.equal(res.confirmed, null);
      assert.match(res.message, why);
    };
    await refused({ volume_capabilities: [blockCap('MULTI_NODE_MULTI_WRITER')] }, /multi-attach/);
    await refused({ parameters: { backend: 'thick' } }, /parameters\.backend/);
    await refused({ parameters: { color: 'red' } }, /parameters\.color/);
    await refused({ volume_context: { backend: 'thick' } }, /volume_context\.backend/);
    await refused({ mutable_parameters: { iops: '1' } }, /mutable_parameters/);
  });

  it('NOT_FOUND for an unknown volume; INVALID_ARGUMENT without capabilities', async () => {
    await rejectsCode(
      p.controller('ValidateVolumeCapabilities', { volume_id: 'nope', volume_capabilities: [mountCap()] }),
      status.NOT_FOUND,
    );
    const { volume } = await p.controller('CreateVolume', createRequest(pvc()));
    await rejectsCode(
      p.controller('ValidateVolumeCapabilities', { volume_id: volume.volume_id }),
      status.INVALID_ARGUMENT,
      /^volume_capabilities/,
    );
  });
});

describe('ControllerExpandVolume', () => {
  it('grows the volume; node expansion is required for mount volumes and published ones', async () => {
    const { volume } = await p.controller('CreateVolume', createRequest(pvc(), 16 * MiB));
    const id = volume.volume_id;
    const grown = await p.controller('ControllerExpandVolume', {
      volume_id: id,
      capacity_range: { required_bytes: String(32 * MiB) },
      volume_capability: mountCap(),
    });
    assert.deepEqual(grown, { capacity_bytes: String(32 * MiB), node_expansion_required: true });
    assert.equal((await stat(fileOf('pool', id))).size, 32 * MiB);
    const block = await p.controller('ControllerExpandVolume', {
      volume_id: id,
      capacity_range: { required_bytes: String(40 * MiB + 1) },
      volume_capability: blockCap(),
    });
    assert.deepEqual(block, { capacity_bytes: String(41 * MiB), node_expansion_required: false });
    await p.controller('ControllerPublishVolume', {
      volume_id: id,
      node_id: HOST,
      volume_capability: blockCap(),
    });
    const online = await p.controller('ControllerExpandVolume', {
      volume_id: id,
      capacity_range: { required_bytes: String(48 * MiB) },
      volume_capability: blockCap(),
    });
    assert.deepEqual(online, { capacity_bytes: String(48 * MiB), node_expansion_required: true });
  });

  it('is idempotent: a size the volume has already is OK and changes nothing', async () => {
    const { volume } = await p.controller('CreateVolume', createRequest(pvc(), 16 * MiB));
    const res = await p.controller('ControllerExpandVolume', {
      volume_id: volume.volume_id,
      capacity_range: { required_bytes: String(8 * MiB) },
    });
    assert.deepEqual(res, { capacity_bytes: String(16 * MiB), node_expansion_required: true });
    assert.equal((await cairn().volume(volume.volume_id)).size, 16 * MiB);
  });

  it('NOT_FOUND, INVALID_ARGUMENT and OUT_OF_RANGE as the spec says', async () => {
    await rejectsCode(
      p.controller('ControllerExpandVolume', {
        volume_id: 'nope',
        capacity_range: { required_bytes: String(MiB) },
      }),
      status.NOT_FOUND,
    );
    const { volume } = await p.controller('CreateVolume', createRequest(pvc(), 16 * MiB));
    const id = volume.volume_id;
    await rejectsCode(
      p.controller('ControllerExpandVolume', { volume_id: id }),
      status.INVALID_ARGUMENT,
      /^capacity_range: is required/,
    );
    await rejectsCode(
      p.controller('ControllerExpandVolume', { volume_id: id, capacity_range: {} }),
      status.INVALID_ARGUMENT,
      /required_bytes or limit_bytes/,
    );
    await rejectsCode(
      p.controller('ControllerExpandVolume', {
        volume_id: id,
        capacity_range: { required_bytes: String(32 * MiB + 1), limit_bytes: String(32 * MiB + 2) },
      }),
      status.OUT_OF_RANGE,
    );
    await rejectsCode(
      p.controller('ControllerExpandVolume', {
        volume_id: id,
        capacity_range: { required_bytes: String(32 * MiB) },
        volume_capability: blockCap('MULTI_NODE_MULTI_WRITER'),
      }),
      status.INVALID_ARGUMENT,
    );
    assert.equal((await cairn().volume(id)).size, 16 * MiB);
  });
});

describe('ControllerGetVolume', () => {
  it('reports the volume, the nodes it is published to and a normal condition', async () => {
    const { volume } = await p.controller('CreateVolume', createRequest(pvc()));
    const id = volume.volume_id;
    await p.controller('ControllerPublishVolume', {
      volume_id: id,
      node_id: HOST,
      volume_capability: mountCap(),
    });
    const res = await p.controller('ControllerGetVolume', { volume_id: id });
    assert.deepEqual(res.volume, volume);
    assert.deepEqual(res.status.published_node_ids, [HOST]);
    assert.equal(res.status.volume_condition.abnormal, false);
    await rejectsCode(p.controller('ControllerGetVolume', { volume_id: 'nope' }), status.NOT_FOUND);
    await rejectsCode(p.controller('ControllerGetVolume', {}), status.INVALID_ARGUMENT, /^volume_id/);
  });

  it('reports an abnormal condition when the backend lost the volume or it failed', async () => {
    const q = await startPlugin();
    try {
      const { volume } = await q.controller('CreateVolume', createRequest(pvc()));
      await unlink(join(q.sandbox.backendDirs.pool, `volume-${volume.volume_id}`));
      const res = await q.controller('ControllerGetVolume', { volume_id: volume.volume_id });
      assert.equal(res.status.volume_condition.abnormal, true);
      assert.match(res.status.volume_condition.message, /missing on backend "pool"/);
      const list = await q.controller('ListVolumes', {});
      const entry = list.entries.find(
        (e: { volume: { volume_id: string } }) => e.volume.volume_id === volume.volume_id,
      );
      assert.equal(entry.status.volume_condition.abnormal, true);
      // `cairn state check --repair` marks it error: still abnormal, with the reason.
      await q.server.cairn!.check({ repair: true });
      const after = await q.controller('ControllerGetVolume', { volume_id: volume.volume_id });
      assert.match(after.status.volume_condition.message, /state error .*missing on backend pool/);
    } finally {
      await q.stop();
    }
  });
});

describe('ControllerModifyVolume', () => {
  it('accepts no mutable parameter and changes nothing; NOT_FOUND for an unknown volume', async () => {
    const { volume } = await p.controller('CreateVolume', createRequest(pvc()));
    const before = (await cairn().volume(volume.volume_id)).record;
    await rejectsCode(
      p.controller('ControllerModifyVolume', {
        volume_id: volume.volume_id,
        mutable_parameters: { iops: '5000' },
      }),
      status.INVALID_ARGUMENT,
      /mutable_parameters\.iops/,
    );
    assert.deepEqual((await cairn().volume(volume.volume_id)).record, before);
    await rejectsCode(
      p.controller('ControllerModifyVolume', { volume_id: volume.volume_id }),
      status.INVALID_ARGUMENT,
      /^mutable_parameters: is required/,
    );
    await rejectsCode(
      p.controller('ControllerModifyVolume', { volume_id: 'nope', mutable_parameters: { iops: '1' } }),
      status.NOT_FOUND,
    );
  });
});

describe('ControllerGetCapabilities', () => {
  it('lists what the controller implements', async () => {
    const res = await p.controller('ControllerGetCapabilities');
    assert.deepEqual(
      res.capabilities.map((c: { rpc: { type: string } }) => c.rpc.type),
      [
        'CREATE_DELETE_VOLUME',
        'PUBLISH_UNPUBLISH_VOLUME',
        'LIST_VOLUMES',
        'GET_CAPACITY',
        'CREATE_DELETE_SNAPSHOT',
        'LIST_SNAPSHOTS',
        'CLONE_VOLUME',
        'PUBLISH_READONLY',
        'EXPAND_VOLUME',
        'LIST_VOLUMES_PUBLISHED_NODES',
        'VOLUME_CONDITION',
        'GET_VOLUME',
        'SINGLE_NODE_MULTI_WRITER',
        'GET_SNAPSHOT',
      ],
    );
  });
});

describe('GetCapacity', () => {
  it('reports free space per backend, topology and capabilities', async () => {
    const thin = await p.controller('GetCapacity', {});
    assert.ok(Number(thin.available_capacity) > 0);
    assert.equal(Number(thin.available_capacity) % MiB, 0);
    assert.equal(thin.maximum_volume_size, null, 'a thin backend has no largest volume');
    assert.deepEqual(thin.minimum_volume_size, { value: String(MiB) });
    const thick = await p.controller('GetCapacity', { parameters: { backend: 'thick' } });
    assert.deepEqual(thick.maximum_volume_size, { value: thick.available_capacity });
    const here = await p.controller('GetCapacity', { accessible_topology: { segments: { [KEY]: HOST } } });
    assert.ok(Number(here.available_capacity) > 0);
    const there = await p.controller('GetCapacity', {
      accessible_topology: { segments: { [KEY]: 'elsewhere' } },
    });
    assert.equal(there.available_capacity, '0');
    const multi = await p.controller('GetCapacity', {
      volume_capabilities: [blockCap('MULTI_NODE_MULTI_WRITER')],
    });
    assert.equal(multi.available_capacity, '0');
    await rejectsCode(
      p.controller('GetCapacity', { parameters: { color: 'red' } }),
      status.INVALID_ARGUMENT,
      /parameters\.color/,
    );
    await rejectsCode(
      p.controller('GetCapacity', { parameters: { backend: 'nope' } }),
      status.INVALID_ARGUMENT,
      /unknown backend/,
    );
  });
});
