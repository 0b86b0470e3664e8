/**
 * The one mapping from Cairn's error codes to the CLI's exit codes. Scripts branch on these,
 * so a number never changes meaning; new error codes get a new number or join a class.
 *
 * | exit | meaning                         | error codes                    |
 * |------|---------------------------------|--------------------------------|
 * | 0    | success                         |                                |
 * | 1    | internal or unexpected error    | INTERNAL, anything not Cairn's |
 * | 2    | usage error, invalid argument   | INVALID_ARGUMENT, bad command line, bad config file |
 * | 3    | not found                       | NOT_FOUND                      |
 * | 4    | already exists                  | ALREADY_EXISTS                 |
 * | 5    | invalid state                   | INVALID_STATE                  |
 * | 6    | backend failure                 | BACKEND_FAILURE                |
 * | 7    | busy, timed out or conflicting  | BUSY, TIMEOUT, CONFLICT        |
 * | 8    | unsupported                     | UNSUPPORTED                    |
 * | 9    | insufficient capacity           | INSUFFICIENT_CAPACITY          |
 * | 10   | state store failure             | STATE_STORE_FAILURE            |
 */
import type { ErrorCode } from '../util/errors.js';

export const EXIT_OK = 0;
export const EXIT_INTERNAL = 1;
export const EXIT_USAGE = 2;

// A Record over the ErrorCode union: adding a code to the library fails the build until it is
// given an exit code here.
const BY_CODE: Record<ErrorCode, number> = {
  INTERNAL: EXIT_INTERNAL,
  INVALID_ARGUMENT: EXIT_USAGE,
  NOT_FOUND: 3,
  ALREADY_EXISTS: 4,
  INVALID_STATE: 5,
  BACKEND_FAILURE: 6,
  BUSY: 7,
  TIMEOUT: 7,
  CONFLICT: 7,
  UNSUPPORTED: 8,
  INSUFFICIENT_CAPACITY: 9,
  STATE_STORE_FAILURE: 10,
};

/** The exit code for an error code; unknown codes count as internal errors. */
export function exitCodeFor(code: string): number {
  return (BY_CODE as Record<string, number>)[code] ?? EXIT_INTERNAL;
}

/** The table above, for `cairn --help`. */
export const EXIT_CODES_HELP = `Exit codes:
  0 ok                 4 already exists    8 unsupported
  1 internal error     5 invalid state     9 insufficient capacity
  2 usage / invalid    6 backend failure  10 state store failure
  3 not found          7 busy, timeout or conflict`;
