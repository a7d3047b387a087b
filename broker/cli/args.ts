// Option parsers shared by the `jit` command's groups.
import { InvalidArgumentError } from 'commander';

/** For a repeatable option: each value appended. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** `--claim k=v`: numbers, booleans and JSON are parsed, anything else is a string. */
export function parseClaim(kv: string): [string, unknown] {
  const i = kv.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError(`--claim takes k=v, got '${kv}'`);
  const raw = kv.slice(i + 1);
  let value: unknown = raw;
  if (/^(-?\d+(\.\d+)?|true|false|\[.*\]|\{.*\})$/.test(raw)) {
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
  }
  return [kv.slice(0, i), value];
}
