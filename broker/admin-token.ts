// The admin credential a broker generates for itself (`admin_token: generate`, the embedded default):
// 32 random bytes in `<data_dir>/admin.token`, mode 0600, made at the broker's first start and read by
// the `jit` commands run with the same config, so `jit approve` works with no flag and no variable.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createPrivateFile, readPrivateFile } from './private-file.js';

/** The `admin_token` value that asks for a generated credential. */
export const GENERATE = 'generate';

export function adminTokenFile(dataDir: string): string {
  return join(dataDir, 'admin.token');
}

/** The generated token, or null when the broker has not made one yet. Refuses a file others can read. */
export function readAdminToken(dataDir: string): string | null {
  const file = adminTokenFile(dataDir);
  const token = readPrivateFile(file, 'chmod 600 it, or delete it and restart the broker to have a new one made');
  if (token === null) return null;
  if (!/^[A-Za-z0-9_-]{16,}$/.test(token)) throw new Error(`${file} does not hold an admin token: delete it and restart the broker to have a new one made`);
  return token;
}

/** The broker's side: the generated token, made on first use (0600, never overwritten). */
export function loadOrCreateAdminToken(dataDir: string): string {
  const existing = readAdminToken(dataDir);
  if (existing) return existing;
  const file = adminTokenFile(dataDir);
  createPrivateFile(file, `${randomBytes(32).toString('base64url')}\n`);
  const token = readAdminToken(dataDir);
  if (!token) throw new Error(`${file} could not be created`);
  return token;
}
