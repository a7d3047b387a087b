// The key the console seals its cookies with: 32 random bytes in `<data_dir>/ui-session.key` (mode 0600), made
// at the first start. A fleet shares data_dir, so a sign-in on one replica is good on the others.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function uiKeyFile(dataDir: string): string {
  return join(dataDir, 'ui-session.key');
}

function read(file: string): Uint8Array | null {
  let mode: number;
  try {
    mode = statSync(file).mode & 0o777;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  if (mode & 0o077) throw new Error(`${file} can be read by other users (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 it`);
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64url');
  if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte key: delete it and restart the broker (everyone signs in again)`);
  return new Uint8Array(key);
}

/** The console's cookie key, made on first use (0600, never overwritten; a replica that loses the race reads the winner's). */
export function loadOrCreateUiKey(dataDir: string): Uint8Array {
  const file = uiKeyFile(dataDir);
  const existing = read(file);
  if (existing) return existing;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  try {
    writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const key = read(file);
  if (!key) throw new Error(`${file} could not be created`);
  return key;
}
