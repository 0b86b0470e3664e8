/**
 * Fault injection for crash tests: when the environment variable CAIRN_FAULT names a point,
 * the process kills itself with SIGKILL there — a real crash in the middle of an operation,
 * with no chance to clean up. Read once; costs one string comparison per point otherwise.
 */
const armed = process.env.CAIRN_FAULT;

/** A place where a crash test may kill the process, e.g. `volume.create:after-record`. */
export function faultPoint(name: string): void {
  if (armed === name) process.kill(process.pid, 'SIGKILL');
}
