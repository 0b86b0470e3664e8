import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRunner, ErrorCode } from '../../src/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { rejectsWith } from '../harness/assert.js';

const runner = createRunner({ logger: silentLogger });
/** Argv of a node one-liner: node -e SCRIPT ARGS... */
const node = (script: string, ...args: string[]) => [process.execPath, '-e', script, ...args];

describe('command runner', () => {
  it('passes arguments literally: no shell ever sees them', async () => {
    for (const arg of [
      'a;b $(x)',
      '`id`',
      'a|b && c',
      '$HOME',
      '*',
      'it\'s "quoted"',
      'line\nbreak',
      '-n',
      '',
    ]) {
      const { stdout, exitCode } = await runner.run(['printf', '%s', arg]);
      assert.equal(stdout, arg);
      assert.equal(exitCode, 0);
    }
  });

  it('returns stdout, stderr and the exit code; takes standard input', async () => {
    const r = await runner.run(node('process.stdin.pipe(process.stdout); console.error("to-err")'), {
      input: 'from-stdin',
    });
    assert.deepEqual(r, { stdout: 'from-stdin', stderr: 'to-err\n', exitCode: 0 });
    const three = await runner.run(node('process.exit(3)'), { okExitCodes: [0, 3] });
    assert.equal(three.exitCode, 3);
  });

  it('fails with BACKEND_FAILURE on a bad exit code, showing stderr', async () => {
    const err = await rejectsWith(
      runner.run(node('console.error("it broke"); process.exit(4)')),
      ErrorCode.BackendFailure,
      'exit 4',
      'it broke',
    );
    assert.equal(err.details?.exitCode, 4);
  });

  it('kills a command that runs past its timeout and fails with TIMEOUT', async () => {
    const started = Date.now();
    await rejectsWith(runner.run(['sleep', '10'], { timeoutMs: 150 }), ErrorCode.Timeout, '150');
    assert.ok(Date.now() - started < 3_000, 'it did not wait for the command');
  });

  it('fails with UNSUPPORTED when the program does not exist', async () => {
    await rejectsWith(
      runner.run(['cairn-no-such-program-xyz', 'arg']),
      ErrorCode.Unsupported,
      'cairn-no-such-program-xyz',
    );
  });

  it('masks secrets in every error message', async () => {
    const secret = 'hunter2-S3cret';
    const opts = { secrets: [secret] };
    const failing = await rejectsWith(
      runner.run(node('console.error("bad password " + process.argv[1]); process.exit(1)', secret), opts),
      ErrorCode.BackendFailure,
      '***',
    );
    const slow = await rejectsWith(
      runner.run(node('setTimeout(() => {}, 5000)', secret), { ...opts, timeoutMs: 150 }),
      ErrorCode.Timeout,
      '***',
    );
    const missing = await rejectsWith(
      runner.run(['cairn-no-such-program-xyz', secret], opts),
      ErrorCode.Unsupported,
    );
    for (const err of [failing, slow, missing]) {
      assert.ok(!err.message.includes(secret), err.message);
      assert.ok(!JSON.stringify(err.toJSON()).includes(secret));
    }
  });

  it('prefixes commands run as root with the root helper', async () => {
    const helped = createRunner({ logger: silentLogger, rootHelper: ['env', 'CAIRN_VIA_HELPER=yes'] });
    const script = node('process.stdout.write(process.env.CAIRN_VIA_HELPER ?? "none")');
    assert.equal((await helped.run(script, { root: true })).stdout, 'yes');
    assert.equal((await helped.run(script)).stdout, 'none');
  });
});
