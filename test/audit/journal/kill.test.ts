// kill -9 of the broker under an INSERT load: after a restart, every row the database has is recorded, as
// the statement that wrote it (each was in the journal before it was forwarded), and the sessions the
// killed process held are closed with a reason.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../../broker/store/sqlite.js';
import { direct, eventually, run, sleep, UPSTREAM } from '../../support/broker.js';

const BIN = resolve('bin/jit.js');
const dir = mkdtempSync(join(tmpdir(), 'jit-kill9-'));

afterAll(async () => {
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_kill9'));
  rmSync(dir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((done) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => done(port));
    });
  });
}

async function start(): Promise<{ child: ChildProcess; log: () => string }> {
  const child = spawn(process.execPath, [BIN, 'start'], { cwd: dir, env: { ...process.env, JIT_LOG_LEVEL: 'warn' } });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  await eventually(async () => log.includes('jit-broker ready') || child.exitCode !== null, 60_000);
  if (child.exitCode !== null) throw new Error(`the broker did not start:\n${log}`);
  return { child, log: () => log };
}

describe('kill -9 under an INSERT load', () => {
  it('every row at the database is recorded after a restart; the killed sessions are closed', async () => {
    const [pgPort, httpPort] = [await freePort(), await freePort()];
    writeFileSync(
      join(dir, 'jit.yaml'),
      `store: sqlite:.jit/jit.db
listen: { postgres: 127.0.0.1:${pgPort}, mysql: null, http: 127.0.0.1:${httpPort} }
tls: { plaintext: loopback }
targets:
  app: { engine: postgres, upstream: "${UPSTREAM}" }
rules:
  - { id: rw, kinds: [read, write], action: allow }
`,
    );
    await direct((c) => c.query('DROP TABLE IF EXISTS jit_kill9; CREATE TABLE jit_kill9 (v text PRIMARY KEY)'));
    const first = await start();
    const token = (await run(process.execPath, [BIN, 'token', '--build', 'kill9', '--config', join(dir, 'jit.yaml')])).stdout.trim();
    expect(token).toMatch(/^ey/);

    // Four clients insert as fast as they can; the broker is killed in the middle.
    let stop = false;
    const clients = await Promise.all(
      [0, 1, 2, 3].map(async (n) => {
        const c = new pg.Client({ host: '127.0.0.1', port: pgPort, user: 'ci', database: 'app', password: token, ssl: false });
        c.on('error', () => {});
        await c.connect();
        return { n, c };
      }),
    );
    const load = clients.map(async ({ n, c }) => {
      for (let i = 0; !stop; i++) await c.query(`INSERT INTO jit_kill9 VALUES ('c${n}-${i}')`).catch(() => (stop = true));
    });
    await sleep(1500);
    first.child.kill('SIGKILL');
    await Promise.all(load);
    const inDb: string[] = (await direct((c) => c.query('SELECT v FROM jit_kill9'))).rows.map((r: { v: string }) => r.v);
    expect(inDb.length).toBeGreaterThan(50);

    // Restart: the journal is indexed, the killed process's sessions closed; then stop it to read the store.
    const second = await start();
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.once('exit', r));
    const store = await openSqliteStore(join(dir, '.jit/jit.db'));
    try {
      const sessions = await store.listSessions({ build: 'kill9' });
      expect(sessions).toHaveLength(4);
      expect(sessions.every((s) => s.endReason === 'the broker stopped while the session was open')).toBe(true);
      const recorded = new Set<string>();
      for (const s of sessions) for (const st of await store.listStatements(s.id)) recorded.add(st.sql);
      const missing = inDb.filter((v) => !recorded.has(`INSERT INTO jit_kill9 VALUES ('${v}')`));
      expect(missing).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
