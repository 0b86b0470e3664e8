/** The rendering pieces: tables, field lists, the progress bar (on a fake terminal). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatFields, formatTable, Output, plural } from '../../src/cli/output.js';
import { createProgressBar, renderBar } from '../../src/cli/progress.js';

function sink() {
  const chunks: string[] = [];
  return {
    chunks,
    isTTY: true,
    columns: 60,
    write(s: string) {
      chunks.push(s);
      return true;
    },
  };
}

describe('cli output', () => {
  it('tables align columns, right-align numbers and show missing values as -', () => {
    const text = formatTable(
      [
        { header: 'name', value: (r: { name: string | null; size: number }) => r.name },
        { header: 'size', value: (r) => r.size, right: true },
        { header: 'note', value: () => 'x' },
      ],
      [
        { name: 'alpha', size: 5 },
        { name: null, size: 1234 },
      ],
    );
    assert.equal(text, ['NAME   SIZE  NOTE', 'alpha     5  x', '-      1234  x'].join('\n'));
  });

  it('field lists align values and leave out undefined ones', () => {
    assert.equal(
      formatFields([
        ['id', 'abc'],
        ['description', undefined],
        ['long label', null],
      ]),
      'id:          abc\nlong label:  -',
    );
  });

  it('Output prints JSON or the human text, notes only for humans', () => {
    const out = sink();
    const err = sink();
    new Output(true, out, err).result({ a: 1 }, () => assert.fail('human text is not computed with --json'));
    new Output(true, out, err).note('quiet');
    assert.deepEqual(JSON.parse(out.chunks.join('')), { a: 1 });
    assert.deepEqual(err.chunks, []);
    const human = sink();
    new Output(false, human, err).result({ a: 1 }, 'a is 1');
    assert.deepEqual(human.chunks, ['a is 1\n']);
    assert.equal(plural(1, 'volume'), '1 volume');
    assert.equal(plural(0, 'volume'), '0 volumes');
  });

  it('the progress bar draws on a terminal, throttled, and clears its line', () => {
    const tty = sink();
    let now = 0;
    const bar = createProgressBar('cloning x', { json: false, stream: tty, now: () => now })!;
    assert.ok(bar);
    bar.update(0.1);
    now += 10;
    bar.update(0.2); // too soon: skipped
    now += 200;
    bar.update(0.5);
    bar.update(1); // 100% is always drawn
    bar.done();
    assert.equal(tty.chunks.length, 4);
    assert.match(tty.chunks[0]!, /^\rcloning x \[#*\.*\]\s+10%$/);
    assert.match(tty.chunks[1]!, /50%$/);
    assert.match(tty.chunks[2]!, /100%$/);
    assert.equal(tty.chunks[3], '\r\x1b[K');
    assert.equal(renderBar('l', 0.5, 40), `l [${'#'.repeat(15)}${'.'.repeat(15)}]  50%`);
  });

  it('no progress bar off a terminal or with --json', () => {
    assert.equal(createProgressBar('x', { json: false, stream: { ...sink(), isTTY: false } }), undefined);
    assert.equal(createProgressBar('x', { json: true, stream: sink() }), undefined);
  });
});
