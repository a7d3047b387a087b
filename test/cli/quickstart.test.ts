// The README's first command, as a user runs it: `jit start` in an empty folder, no config, no database.
import type { ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../support/broker.js';
import { startQuickstart, type Quickstart } from '../support/quickstart.js';

const PG_PORT = 46432;
const HTTP_PORT = 48080;
const env = {
  JIT_LISTEN_POSTGRES: `127.0.0.1:${PG_PORT}`,
  JIT_LISTEN_HTTP: `127.0.0.1:${HTTP_PORT}`,
  JIT_LISTEN_MYSQL: '127.0.0.1:46033',
  JIT_DEMO_UPSTREAM: '',
};
let q: Quickstart;
let dir: string;
let broker: ChildProcess;
const jit = (...args: string[]) => q.jit(...args);

beforeAll(async () => {
  q = await startQuickstart(env, 'jit-quickstart-');
  ({ dir, broker } = q);
}, 90_000);

afterAll(() => q?.stop());

describe('jit start with no config', () => {
  it('creates its store, dev issuer key and TLS certificate under .jit/', () => {
    expect(existsSync(join(dir, '.jit', 'jit.db'))).toBe(true);
    expect(statSync(join(dir, '.jit', 'issuer.jwk')).mode & 0o777).toBe(0o600);
    expect(existsSync(join(dir, '.jit', 'broker.crt'))).toBe(true);
  });

  it('serves the demo target: a token from `jit token` opens psql on `app`, and `jit sessions` lists it', async () => {
    const token = (await jit('token', '--build', 'build-123')).stdout.trim();
    const r = await run('psql', ['-X', '-A', '-t', '-c', 'SELECT count(*) FROM customers'], {
      PGPASSWORD: token,
      PGHOST: '127.0.0.1',
      PGPORT: String(PG_PORT),
      PGDATABASE: 'app',
      PGUSER: 'ci',
      PGSSLMODE: 'require',
    });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('20');
    const sessions = JSON.parse((await jit('sessions', '--build', 'build-123', '--json')).stdout) as { statementCount: number; target: string }[];
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject({ target: 'app', statementCount: 1 });
  });

  it('stays responsive while the demo database runs a slow query (it runs in its own process)', async () => {
    const token = (await jit('token')).stdout.trim();
    const slow = run('psql', ['-X', '-c', 'SELECT pg_sleep(2)'], {
      PGPASSWORD: token,
      PGHOST: '127.0.0.1',
      PGPORT: String(PG_PORT),
      PGDATABASE: 'app',
      PGUSER: 'ci',
      PGSSLMODE: 'require',
    });
    await new Promise((r) => setTimeout(r, 500));
    const health = fetch(`http://127.0.0.1:${HTTP_PORT}/healthz`);
    // The health check is answered while the slow query is still running, not after it.
    const first = await Promise.race([health.then(() => 'health'), slow.then(() => 'slow query')]);
    expect(first).toBe('health');
    expect((await health).status).toBe(200);
    expect((await slow).code).toBe(0);
  });

  it('shuts down on SIGTERM and records the end of open sessions', async () => {
    broker.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => broker.once('exit', r));
    expect(code).toBe(0);
    const sessions = JSON.parse((await jit('sessions', '--json')).stdout) as { endedAt: string | null }[];
    expect(sessions.every((s) => s.endedAt !== null)).toBe(true);
  });
});
