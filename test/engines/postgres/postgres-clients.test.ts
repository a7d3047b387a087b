// Real clients through the broker to the real PostgreSQL: psql, pgbench, node-postgres; and what was recorded.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { direct, eventually, psqlEnv, run, sleep, startTestBroker, type TestBroker } from '../../support/broker.js';

let t: TestBroker;

beforeAll(async () => {
  t = await startTestBroker();
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_t_items, jit_t_copy'));
});
afterAll(async () => {
  await t?.stop();
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_t_items, jit_t_copy'));
});

describe('psql', () => {
  it('runs -c through TLS with a token as the password, and the session is recorded with its statements', async () => {
    const token = await t.token({ build: 'build-psql-c' });
    const r = await run(
      'psql',
      ['-X', '-A', '-t', '-c', 'SELECT 40 + 2 AS answer', '-c', 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'],
      psqlEnv(t, token),
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')[0]).toBe('42');
    const [s] = await eventually(async () => {
      const rows = await t.broker.store.listSessions({ build: 'build-psql-c' });
      return rows.length && rows[0]!.endedAt ? rows : null;
    });
    expect(s).toMatchObject({ subject: 'ci:test', target: 'app', statementCount: 2, clientApplication: 'psql', tls: true, endReason: 'client terminated' });
    const st = await t.broker.store.listStatements(s!.id);
    expect(st.map((x) => [x.seq, x.sql, x.decision, x.ruleId, x.tag, x.rows])).toEqual([
      [1, 'SELECT 40 + 2 AS answer', 'allow', 'day-to-day', 'SELECT 1', 1],
      [2, 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()', 'allow', 'day-to-day', 'SELECT 1', 1],
    ]);
    expect(st[0]!.durationMs).toBeGreaterThan(0);
  });

  it('runs a script file, including COPY in and out, and records every statement in order', async () => {
    const token = await t.token({ build: 'build-psql-f' });
    const script = join(t.dir, 'script.sql');
    writeFileSync(
      script,
      [
        'CREATE TABLE jit_t_copy (id int PRIMARY KEY, name text);',
        'COPY jit_t_copy FROM STDIN;',
        '1\talice',
        '2\tbob',
        '\\.',
        "INSERT INTO jit_t_copy VALUES (3, 'carol');",
        'COPY (SELECT * FROM jit_t_copy ORDER BY id) TO STDOUT;',
        'SELECT count(*) FROM jit_t_copy;',
      ].join('\n'),
    );
    const r = await run('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-f', script], psqlEnv(t, token));
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('1\talice\n2\tbob\n3\tcarol\n');
    expect(r.stdout.trim().endsWith('3')).toBe(true);
    expect(await direct(async (c) => (await c.query('SELECT count(*)::int AS n FROM jit_t_copy')).rows[0].n)).toBe(3);
    const [s] = await t.broker.store.listSessions({ build: 'build-psql-f' });
    const st = await t.broker.store.listStatements(s!.id);
    expect(st.map((x) => x.tag)).toEqual(['CREATE TABLE', 'COPY 2', 'INSERT 0 1', 'COPY 3', 'SELECT 1']);
    expect(st[1]!.rows).toBe(2);
  });

  it('cancels a running statement when the user presses Ctrl-C (CancelRequest mapped upstream)', async () => {
    const token = await t.token({ build: 'build-cancel' });
    const child = spawn('psql', ['-X', '-c', 'SELECT pg_sleep(20)'], { env: { ...process.env, ...psqlEnv(t, token) } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await eventually(() => direct(async (c) => (await c.query("SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(20)'")).rowCount));
    const started = Date.now();
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(code).not.toBe(0);
    expect(stderr).toContain('canceling statement due to user request');
    const [s] = await t.broker.store.listSessions({ build: 'build-cancel' });
    const [st] = await t.broker.store.listStatements(s!.id);
    expect(st!.error).toContain('canceling statement due to user request');
  });
});

describe('pgbench', () => {
  it('initializes through the broker, then runs -S in simple, extended and prepared modes', async () => {
    const token = await t.token({ build: 'build-pgbench' });
    const env = psqlEnv(t, token);
    const init = await run('pgbench', ['-i', '-s', '1', '-q'], env);
    expect(init.code, init.stderr).toBe(0);
    for (const mode of ['simple', 'extended', 'prepared']) {
      const r = await run('pgbench', ['-S', '-M', mode, '-c', '4', '-j', '2', '-t', '50', '-n'], env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('number of transactions actually processed: 200/200');
    }
    const sessions = await t.broker.store.listSessions({ build: 'build-pgbench' });
    const recorded = sessions.reduce((n, s) => n + s.statementCount, 0);
    // Each -S transaction is one SELECT: 3 modes × 200, all recorded (plus pgbench's own setup queries).
    expect(recorded).toBeGreaterThanOrEqual(600);
    const prepared = sessions.find((s) => s.statementCount >= 50 && s.endedAt);
    const st = await t.broker.store.listStatements(prepared!.id);
    expect(st.filter((x) => x.sql.includes('SELECT abalance FROM pgbench_accounts')).every((x) => x.tag === 'SELECT 1')).toBe(true);
  });
});

describe('node-postgres', () => {
  it('runs parameterized queries and transactions; a rolled back insert is gone, a committed one stays', async () => {
    const c = new pg.Client(t.pgConfig(await t.token({ build: 'build-node' })));
    await c.connect();
    try {
      await c.query('CREATE TABLE jit_t_items (id int PRIMARY KEY, name text)');
      const ins = await c.query('INSERT INTO jit_t_items VALUES ($1, $2), ($3, $4) RETURNING id', [1, 'one', 2, 'two']);
      expect(ins.rows.map((r: { id: number }) => r.id)).toEqual([1, 2]);
      const sel = await c.query({ text: 'SELECT name FROM jit_t_items WHERE id = $1', values: [2], name: 'by-id' });
      expect(sel.rows).toEqual([{ name: 'two' }]);
      const again = await c.query({ text: 'SELECT name FROM jit_t_items WHERE id = $1', values: [1], name: 'by-id' });
      expect(again.rows).toEqual([{ name: 'one' }]);

      await c.query('BEGIN');
      await c.query('INSERT INTO jit_t_items VALUES ($1, $2)', [3, 'three']);
      await c.query('ROLLBACK');
      await c.query('BEGIN');
      await c.query('INSERT INTO jit_t_items VALUES ($1, $2)', [4, 'four']);
      await c.query('COMMIT');
    } finally {
      await c.end();
    }
    const ids = await direct(async (d) => (await d.query('SELECT id FROM jit_t_items ORDER BY id')).rows.map((r: { id: number }) => r.id));
    expect(ids).toEqual([1, 2, 4]);
    const [s] = await t.broker.store.listSessions({ build: 'build-node' });
    const st = await t.broker.store.listStatements(s!.id);
    // The named statement was prepared once and executed twice: both executions are recorded.
    expect(st.filter((x) => x.sql === 'SELECT name FROM jit_t_items WHERE id = $1').map((x) => [x.protocol, x.rows])).toEqual([
      ['execute', 1],
      ['execute', 1],
    ]);
  });

  it('records the end of a session whose client vanished mid-statement, and the upstream query stops', async () => {
    const c = new pg.Client(t.pgConfig(await t.token({ build: 'build-vanish' })));
    await c.connect();
    c.on('error', () => {});
    void c.query('SELECT pg_sleep(30)').catch(() => {});
    await eventually(() => direct(async (d) => (await d.query("SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'")).rowCount));
    (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    const [s] = await eventually(async () => {
      const rows = await t.broker.store.listSessions({ build: 'build-vanish' });
      return rows[0]?.endedAt ? rows : null;
    });
    expect(s!.endReason).toMatch(/client/);
    await eventually(async () => direct(async (d) => (await d.query("SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'")).rowCount === 0));
    await sleep(10);
  });
});
