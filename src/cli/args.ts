/**
 * Parsers for option values that commander calls while reading the command line. They throw
 * commander's InvalidArgumentError, so a malformed value is a usage error (exit 2) reported
 * with the option's name, before any state is opened.
 */
import { InvalidArgumentError } from 'commander';

/**
 * Collects a repeatable `--opt key=value` into a map. The value may contain `=`; the key may
 * not be empty. Repeating a key keeps the last value, like most CLIs' `--label`.
 * @example cairn volume create --size 1G --metadata app=pg --metadata tier=gold
 */
export function collectKeyValue(
  value: string,
  previous: Record<string, string> | undefined,
): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`expected key=value, got ${JSON.stringify(value)}`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}
