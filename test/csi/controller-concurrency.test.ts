import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { after, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import type { Driver } from '../../src/drivers/spi.js';
import { jsonLine, killChildren, spawnChild } from '../harness/children.js';
import { createRequest, mountCap, type Plugin, rejectsCode, startPlugin } from './client.js';

const pvc = () => `pvc-${randomUUID()}`;
after(() => killChildren());

/** Holds the pool driver's createVolume until `release()`; resolves `entered` when a call arrives. */
function gate(p: Plugin) {
  const driver = p.server.cairn!.backend('pool').driver as { -readonly [K in keyof Driver]: Driver[K] };
  const original = driver.createVolume.bind(driver);
  let release!: () => void;
  const open = new Promise<void>((r) => {
    release = r;
  });
  let entered!: () => void;
  const arrived = new Promise<void>((r) => {
    entered = r;
  });
  driver.createVolume = async (ref) => {
    entered();
    await open;
    return original(ref);
  };
  return {
    arrived,
    release() {
      release();
      driver.createVolume = original;
    },
  };
}

describe('concurrent calls on one volume, CAIRN_CSI_CONCURRENCY=abort', () => {
  it('a second CreateVolume for a name in progress is ABORTED; a retry later succeeds', async () => {
    const p = await startPlugin({ CAIRN_CSI_CONCURRENCY: 'abort' });
    try {
      const name = pvc();
      const g = gate(p);
      const first = p.controller('CreateVolume', createRequest(name));
      await g.arrived;
      await rejectsCode(p.controller('CreateVolume', createRequest(name)), status.ABORTED, /in progress/);
      g.release();
      const a = await first;
      const b = await p.controller('CreateVolume', createRequest(name));
      assert.equal(b.volume.volume_id, a.volume.volume_id);
    } finally {
      await p.stop();
    }
  });

  it('a volume locked by another process answers ABORTED quickly', async () => {
    const p = await startPlugin({ CAIRN_CSI_CONCURRENCY: 'abort' });
    try {
      const { volume } = await p.controller('CreateVolume', createRequest(pvc()));
      const lockDir = `${p.sandbox.stateFile}.locks`;
      const holder = spawnChild('hold-lock', [lockDir, `volume:${volume.volume_id}`]);
      await jsonLine(holder, 'locked');
      const started = Date.now();
      await rejectsCode(
        p.controller('ControllerPublishVolume', {
          volume_id: volume.volume_id,
          node_id: hostname(),
          volume_capability: mountCap(),
        }),
        status.ABORTED,
        /locked/,
      );
      assert.ok(Date.now() - started < 5_000, 'answered without waiting for the lock');
      holder.process.kill('SIGKILL');
      await holder.exited;
      await p.controller('ControllerPublishVolume', {
        volume_id: volume.volume_id,
        node_id: hostname(),
        volume_capability: mountCap(),
      });
    } finally {
      await p.stop();
    }
  });
});

describe('concurrent calls on one volume, CAIRN_CSI_CONCURRENCY=queue', () => {
  it('a second CreateVolume for the same name waits and returns the same volume', async () => {
    const p = await startPlugin({ CAIRN_CSI_CONCURRENCY: 'queue' });
    try {
      const name = pvc();
      const g = gate(p);
      const first = p.controller('CreateVolume', createRequest(name));
      await g.arrived;
      const second = p.controller('CreateVolume', createRequest(name));
      setTimeout(() => g.release(), 100);
      const [a, b] = await Promise.all([first, second]);
      assert.equal(b.volume.volume_id, a.volume.volume_id);
      assert.equal((await p.server.cairn!.volumes({ name })).length, 1);
    } finally {
      await p.stop();
    }
  });

  it('a call on a volume another process holds waits for it', async () => {
    const p = await startPlugin({ CAIRN_CSI_CONCURRENCY: 'queue' });
    try {
      const { volume } = await p.controller('CreateVolume', createRequest(pvc()));
      const holder = spawnChild('hold-lock', [`${p.sandbox.stateFile}.locks`, `volume:${volume.volume_id}`]);
      await jsonLine(holder, 'locked');
      const publish = p.controller('ControllerPublishVolume', {
        volume_id: volume.volume_id,
        node_id: hostname(),
        volume_capability: mountCap(),
      });
      setTimeout(() => holder.process.kill('SIGKILL'), 300);
      const res = await publish;
      assert.equal(res.publish_context['cairn.io/protocol'], 'local');
    } finally {
      await p.stop();
    }
  });
});
