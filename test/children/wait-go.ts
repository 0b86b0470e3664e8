import { createInterface } from 'node:readline';

/** Resolves when the parent writes the line "go": a start barrier for racing processes. */
export function waitForGo(): Promise<void> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin });
    rl.on('line', (line) => {
      if (line.trim() === 'go') {
        rl.close();
        // An open stdin would keep this process alive after its work is done.
        process.stdin.destroy();
        resolve();
      }
    });
  });
}

/** Prints one JSON line for the parent. */
export function report(value: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}
