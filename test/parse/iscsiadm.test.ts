import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  IscsiExit,
  iscsiadmExitReason,
  parseIscsiSessions,
  parseIscsiTargets,
} from '../../src/parse/iscsiadm.js';

// Captured from open-iscsi 2.1.8 (Debian 12) in the test VM, against LIO and tgt targets
// (test/vm/guest/iscsi.guest.ts sets up the same). The compiled test runs from dist/: read
// from the source tree.
const fixture = (name: string) =>
  readFileSync(new URL(`../../../test/fixtures/iscsiadm/${name}`, import.meta.url), 'utf8');

describe('iscsiadm parsers', () => {
  it('parses sendtargets discovery: every portal of the target', () => {
    assert.deepEqual(parseIscsiTargets(fixture('discovery-sendtargets-lio.txt')), [
      { portal: '127.0.0.1:3260', tpgt: 1, target: 'iqn.2026-11.org.cairn:vol1' },
      { portal: '127.0.0.2:3260', tpgt: 1, target: 'iqn.2026-11.org.cairn:vol1' },
    ]);
  });

  it('parses node records made with -o new (tpgt unknown: -1)', () => {
    assert.deepEqual(parseIscsiTargets(fixture('node-list.txt')), [
      { portal: '127.0.0.1:3260', tpgt: -1, target: 'iqn.2026-11.org.cairn:vol1' },
      { portal: '127.0.0.2:3260', tpgt: -1, target: 'iqn.2026-11.org.cairn:vol1' },
    ]);
  });

  it('parses sessions, and none', () => {
    assert.deepEqual(parseIscsiSessions(fixture('session-two-portals.txt')), [
      { transport: 'tcp', sid: 3, portal: '127.0.0.1:3260', tpgt: 1, target: 'iqn.2026-11.org.cairn:vol1' },
      { transport: 'tcp', sid: 4, portal: '127.0.0.2:3260', tpgt: 1, target: 'iqn.2026-11.org.cairn:vol1' },
    ]);
    assert.deepEqual(parseIscsiSessions(fixture('session-tgt.txt')), [
      { transport: 'tcp', sid: 9, portal: '127.0.0.1:3270', tpgt: 1, target: 'iqn.2026-11.org.cairn:tgt1' },
    ]);
    assert.deepEqual(parseIscsiSessions(fixture('session-none.stderr.txt')), []);
    assert.deepEqual(parseIscsiTargets('iscsiadm: No portals found\n'), []);
  });

  it('parses IPv6 portals', () => {
    assert.deepEqual(parseIscsiTargets('[fd00::1]:3260,1 iqn.2026-11.org.cairn:v\n'), [
      { portal: '[fd00::1]:3260', tpgt: 1, target: 'iqn.2026-11.org.cairn:v' },
    ]);
    assert.deepEqual(parseIscsiSessions('tcp: [12] [fd00::1]:3260,1 iqn.2026-11.org.cairn:v (non-flash)\n'), [
      { transport: 'tcp', sid: 12, portal: '[fd00::1]:3260', tpgt: 1, target: 'iqn.2026-11.org.cairn:v' },
    ]);
  });

  it('knows the exit codes the real failures gave', () => {
    // Each captured login failure names its exit code; the table must agree with it.
    const cases: [string, number][] = [
      ['login-wrong-chap.stderr.txt', IscsiExit.LoginAuthFailed], // LIO, wrong secret
      ['login-lio-noacl.stderr.txt', IscsiExit.LoginAuthFailed], // LIO, initiator not in the ACL
      ['login-tgt-wrong-chap.stderr.txt', IscsiExit.LoginAuthFailed], // tgt, wrong secret
      ['login-tgt-noacl.stderr.txt', IscsiExit.FatalLogin], // tgt, initiator not in the ACL
      ['login-refused.stderr.txt', IscsiExit.TransportTimeout], // nobody listening
    ];
    for (const [name, code] of cases) {
      assert.match(fixture(name), new RegExp(`initiator reported error \\(${code} - `), name);
    }
    assert.match(fixture('login-again.stderr.txt'), /already present/);
    assert.match(iscsiadmExitReason(IscsiExit.LoginAuthFailed), /authentication/);
    assert.match(iscsiadmExitReason(99), /99/);
  });
});
