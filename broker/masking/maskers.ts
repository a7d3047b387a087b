// Maskers: what a masked value becomes. Engine-agnostic: they take a value as text and return its
// replacement as text, or null for SQL NULL. Engines decide how that text is put back on the wire.
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPrivateFile } from '../private-file.js';

/** A value's replacement: text, or null for SQL NULL. */
export type Masker = (value: string) => string | null;

export const MASKERS = ['email', 'partial', 'redact', 'hash', 'null'] as const;
export type MaskerName = (typeof MASKERS)[number];

export interface MaskerOptions {
  /** `partial`: characters left visible at the end (default 4) and at the start (default 0). */
  keepLast?: number;
  keepFirst?: number;
  /** `hash`: the HMAC key. */
  hashKey?: Buffer;
}

/** What `redact` writes, whatever the value was (its length is not kept either). */
export const REDACTED = '****';

const redact: Masker = () => REDACTED;
const toNull: Masker = () => null;

/** First character (code point) of a string. */
function first(s: string): string {
  return String.fromCodePoint(s.codePointAt(0)!);
}

/**
 * `alice@example.com` → `a***@e***.com`: the first character of the local part and of the domain, and the
 * top-level domain. Anything that is not one e-mail address is redacted.
 */
export function maskEmail(value: string): string {
  const v = value.trim();
  const at = v.lastIndexOf('@');
  if (at <= 0 || /\s/.test(v)) return REDACTED;
  const domain = v.slice(at + 1);
  const dot = domain.lastIndexOf('.');
  if (dot <= 0 || dot === domain.length - 1) return REDACTED;
  return `${first(v)}***@${first(domain)}***${domain.slice(dot)}`;
}

const isSeparator = (c: string) => c === ' ' || c === '-' || c === '\t';

/**
 * Every character but the first `keepFirst` and last `keepLast` becomes `*`; spaces and dashes stay, so
 * `4111 1111 1111 1234` → `**** **** **** 1234`. A value too short to hide anything is masked whole.
 */
export function partial(keepFirst: number, keepLast: number): Masker {
  return (value) => {
    const chars = Array.from(value);
    let maskable = 0;
    for (const c of chars) if (!isSeparator(c)) maskable++;
    const keepAll = maskable <= keepFirst + keepLast;
    let seen = 0;
    let out = '';
    for (const c of chars) {
      if (isSeparator(c)) {
        out += c;
        continue;
      }
      const k = seen++;
      out += !keepAll && (k < keepFirst || k >= maskable - keepLast) ? c : '*';
    }
    return out;
  };
}

/** HMAC-SHA256 of the value under the broker's key, first 16 hex digits: equal values stay equal (joins line up). */
export function hash(key: Buffer): Masker {
  return (value) => createHmac('sha256', key).update(value, 'utf8').digest('hex').slice(0, 16);
}

export function masker(name: MaskerName, opts: MaskerOptions = {}): Masker {
  switch (name) {
    case 'email':
      return maskEmail;
    case 'partial':
      return partial(opts.keepFirst ?? 0, opts.keepLast ?? 4);
    case 'redact':
      return redact;
    case 'null':
      return toNull;
    case 'hash':
      if (!opts.hashKey) throw new Error('the hash masker needs a key');
      return hash(opts.hashKey);
  }
}

/**
 * The key of the `hash` masker: `masking.hash_key` when configured, else 32 random bytes kept in
 * `<data_dir>/masking.key` (created on first use, mode 0600), so hashes stay the same across restarts.
 */
export function loadHashKey(dataDir: string, configured?: string): Buffer {
  if (configured) return Buffer.from(configured, 'utf8');
  const file = join(dataDir, 'masking.key');
  if (!existsSync(file)) createPrivateFile(file, `${randomBytes(32).toString('hex')}\n`);
  const hex = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{32,}$/i.test(hex)) throw new Error(`${file} does not hold a hex key; delete it to have a new one made (hashes will change)`);
  return Buffer.from(hex, 'hex');
}
