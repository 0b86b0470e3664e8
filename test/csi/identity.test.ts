import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { type Plugin, rejectsCode, startPlugin } from './client.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

describe('Identity', () => {
  let p: Plugin;
  before(async () => {
    p = await startPlugin();
  });
  after(() => p.stop());

  it('GetPluginInfo: the name, this package version and a manifest of the backends', async () => {
    const res = await p.identity('GetPluginInfo');
    assert.equal(res.name, 'csi.cairn.io');
    assert.equal(res.vendor_version, pkg.version);
    assert.equal(res.manifest.backends, 'pool=file,thick=file');
    assert.equal(res.manifest.defaultBackend, 'pool');
    assert.equal(res.manifest.mode, 'controller');
    assert.equal(res.manifest.topologyKey, 'topology.csi.cairn.io/host');
  });

  it('GetPluginCapabilities: controller service, topology, online and offline expansion', async () => {
    const res = await p.identity('GetPluginCapabilities');
    const caps = res.capabilities.map(
      (c: { type: string; service?: { type: string }; volume_expansion?: { type: string } }) =>
        c.service ? `service:${c.service.type}` : `expansion:${c.volume_expansion?.type}`,
    );
    assert.deepEqual(caps.sort(), [
      'expansion:OFFLINE',
      'expansion:ONLINE',
      'service:CONTROLLER_SERVICE',
      'service:VOLUME_ACCESSIBILITY_CONSTRAINTS',
    ]);
  });

  it('Probe: ready when the state store and every backend answer', async () => {
    const res = await p.identity('Probe');
    assert.deepEqual(res.ready, { value: true });
  });

  it('Probe: FAILED_PRECONDITION naming the state store when a list call fails', async () => {
    const store = p.server.cairn!.store;
    const list = store.list.bind(store);
    store.list = async () => {
      throw new Error('disk on fire');
    };
    try {
      await rejectsCode(p.identity('Probe'), status.FAILED_PRECONDITION, /state store .*disk on fire/);
    } finally {
      store.list = list;
    }
    assert.deepEqual((await p.identity('Probe')).ready, { value: true });
  });

  it('GroupController and SnapshotMetadata answer UNIMPLEMENTED', async () => {
    await rejectsCode(p.groupController('GroupControllerGetCapabilities'), status.UNIMPLEMENTED);
    await rejectsCode(p.groupController('CreateVolumeGroupSnapshot', { name: 'g' }), status.UNIMPLEMENTED);
    const stream = (
      p.snapshotMetadata as unknown as Record<string, (req: object) => NodeJS.EventEmitter>
    ).GetMetadataAllocated!.call(p.snapshotMetadata, { snapshot_id: 'x' }) as NodeJS.EventEmitter;
    const err = await new Promise<{ code: number }>((resolve) => {
      stream.on('error', resolve);
      stream.on('data', () => {});
    });
    assert.equal(err.code, status.UNIMPLEMENTED);
  });

  it('in controller mode, Node methods answer UNIMPLEMENTED', async () => {
    await rejectsCode(p.node('NodeGetInfo'), status.UNIMPLEMENTED, /not served in mode "controller"/);
  });
});

describe('Identity with another configuration', () => {
  it('GetPluginInfo uses CAIRN_CSI_DRIVER_NAME; node mode serves no Controller and opens no backend', async () => {
    const p = await startPlugin({ CAIRN_CSI_MODE: 'node', CAIRN_CSI_DRIVER_NAME: 'block.example.com' });
    try {
      const info = await p.identity('GetPluginInfo');
      assert.equal(info.name, 'block.example.com');
      assert.equal(info.manifest.mode, 'node');
      assert.equal(info.manifest.backends, undefined);
      assert.equal(p.server.cairn, null);
      // The same plugin capabilities in every mode (the spec).
      assert.equal((await p.identity('GetPluginCapabilities')).capabilities.length, 4);
      assert.deepEqual((await p.identity('Probe')).ready, { value: true });
      await rejectsCode(
        p.controller('ControllerGetCapabilities'),
        status.UNIMPLEMENTED,
        /not served in mode "node"/,
      );
    } finally {
      await p.stop();
    }
  });

  it('Probe: FAILED_PRECONDITION naming the backend whose storage is gone', async () => {
    const p = await startPlugin();
    try {
      await rm(p.sandbox.backendDirs.thick, { recursive: true, force: true });
      await rejectsCode(p.identity('Probe'), status.FAILED_PRECONDITION, /backend "thick"/);
    } finally {
      await p.stop();
    }
  });
});
