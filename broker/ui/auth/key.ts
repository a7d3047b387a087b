// The key the console seals its cookies with: 32 random bytes in `<data_dir>/ui-session.key` (mode 0600), made
// at the first start. A fleet shares data_dir, so a sign-in on one replica is good on the others.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createPrivateFile, readPrivateFile } from '../../private-file.js';

export function uiKeyFile(dataDir: string): string {
  return join(dataDir, 'ui-session.key');
}

function read(file: string): Uint8Array | null {
  const text = readPrivateFile(file, 'chmod 600 it');
  if (text === null) return null;
  const key = Buffer.from(text, 'base64url');
  if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte key: delete it and restart the broker (everyone signs in again)`);
  return new Uint8Array(key);
}

/** The console's cookie key, made on first use (0600, never overwritten; a replica that loses the race reads the winner's). */
export function loadOrCreateUiKey(dataDir: string): Uint8Array {
  const file = uiKeyFile(dataDir);
  const existing = read(file);
  if (existing) return existing;
  createPrivateFile(file, `${randomBytes(32).toString('base64url')}\n`);
  const key = read(file);
  if (!key) throw new Error(`${file} could not be created`);
  return key;
}
