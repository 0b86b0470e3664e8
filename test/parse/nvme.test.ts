import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { classifyNvmeConnectError, parseNvmeAddress, parseNvmeIdNs } from '../../src/parse/nvme.js';

// Captured from nvme-cli 2.3 / libnvme 1.3 (Debian 12) against the kernel's nvmet over TCP in the
// test VM (Linux 6.1). The compiled test runs from dist/: read from the source tree.
const fixture = (name: string) =>
  readFileSync(new URL(`../../../test/fixtures/nvme/${name}`, import.meta.url), 'utf8');

describe('parseNvmeIdNs', () => {
  it('reads the size of a file-backed namespace (4 KiB blocks)', () => {
    assert.deepEqual(parseNvmeIdNs(fixture('id-ns-file-4k.json')), {
      blocks: 16384,
      blockBytes: 4096,
      sizeBytes: 64 * 1024 * 1024,
      nguid: '7e0c6b1c39d48f2a9b610c2f4e5a6d7b',
    });
  });

  it('reads the size of a block-device namespace (512-byte blocks)', () => {
    const id = parseNvmeIdNs(fixture('id-ns-bdev-512.json'));
    assert.equal(id.blockBytes, 512);
    assert.equal(id.sizeBytes, 32 * 1024 * 1024);
    assert.equal(id.nguid, '5a1f0d2e8c3b8e4da5f617283940a5b6');
  });

  it('shows the new size after the target revalidated a grown file', () => {
    assert.equal(parseNvmeIdNs(fixture('id-ns-file-4k-grown.json')).sizeBytes, 96 * 1024 * 1024);
  });

  it('refuses output that is not an identify-namespace JSON', () => {
    assert.throws(() => parseNvmeIdNs('nvme: oops'), { code: 'BACKEND_FAILURE' });
    assert.throws(() => parseNvmeIdNs('{"nsze": 1}'), { code: 'BACKEND_FAILURE' });
    assert.throws(() => parseNvmeIdNs('{"nsze": 1, "flbas": 3, "lbafs": [{"ds": 9}]}'), {
      code: 'BACKEND_FAILURE',
    });
  });
});

describe('parseNvmeAddress', () => {
  it('splits the sysfs address of a TCP controller', () => {
    assert.deepEqual(parseNvmeAddress(fixture('sysfs-address.txt')), {
      traddr: '127.0.0.1',
      trsvcid: '4420',
      src_addr: '127.0.0.1',
    });
    assert.deepEqual(parseNvmeAddress(''), {});
  });
});

describe('classifyNvmeConnectError', () => {
  it('tells the failures of nvme connect apart', () => {
    assert.equal(classifyNvmeConnectError(fixture('connect-already.stderr')), 'already-connected');
    assert.equal(classifyNvmeConnectError(fixture('connect-not-allowed.stderr')), 'rejected');
    assert.equal(classifyNvmeConnectError(fixture('connect-refused.stderr')), 'refused');
    assert.equal(classifyNvmeConnectError(fixture('connect-no-route.stderr')), 'unreachable');
    assert.equal(classifyNvmeConnectError(fixture('connect-silent.stderr')), 'unreachable');
    assert.equal(classifyNvmeConnectError('something new'), 'other');
  });
});
