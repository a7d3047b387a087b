// `admin_token: generate`: the admin credential the broker keeps under data_dir (mode 0600), and what
// the `jit` commands say when it is missing or others can read it.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminTokenFile, loadOrCreateAdminToken, readAdminToken } from '../../broker/admin-token.js';
import { run } from '../support/broker.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'jit-admin-token-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('the generated admin token', () => {
  it('is made once, mode 0600, and the same token is read back afterwards', () => {
    const dataDir = join(tmp, 'fresh', '.jit');
    expect(readAdminToken(dataDir)).toBeNull();
    const token = loadOrCreateAdminToken(dataDir);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(adminTokenFile(dataDir)).mode & 0o777).toBe(0o600);
    expect(loadOrCreateAdminToken(dataDir)).toBe(token);
    expect(readAdminToken(dataDir)).toBe(token);
  });

  it('a token file other users can read is refused, not used', () => {
    const dataDir = join(tmp, 'loose');
    loadOrCreateAdminToken(dataDir);
    chmodSync(adminTokenFile(dataDir), 0o644);
    expect(() => readAdminToken(dataDir)).toThrow(/can be read by other users \(mode 0644\): chmod 600 it/);
    expect(() => loadOrCreateAdminToken(dataDir)).toThrow(/can be read by other users/);
  });

  it('`jit approvals` before the broker ever started says where the token will be and what to do; JIT_ADMIN_TOKEN still wins', async () => {
    const dir = join(tmp, 'cli');
    mkdirSync(dir);
    writeFileSync(join(dir, 'jit.yaml'), 'targets: { app: { engine: postgres, upstream: demo } }\nadmin_token: generate\nlisten: { http: "127.0.0.1:1" }\n');
    const jit = (env: Record<string, string>) => run(process.execPath, [resolve('bin/jit.js'), '--config', join(dir, 'jit.yaml'), 'approvals'], env);
    const missing = await jit({ JIT_ADMIN_TOKEN: '' });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`no admin token yet: the broker writes ${join(dir, '.jit', 'admin.token')} when it starts; start it (jit start)`);
    // With the variable set, the file is not looked for: the next problem is reaching the broker.
    const withEnv = await jit({ JIT_ADMIN_TOKEN: 'from-the-environment-0123' });
    expect(withEnv.stderr).toContain('cannot reach the broker at http://127.0.0.1:1');
  });
});
