// Held statements and KILL through the MySQL engine against the real MariaDB: a held DROP TABLE approved,
// another denied, a client that leaves while held, a prepared statement held at each execute; KILL QUERY
// of a running SLEEP (mysql2, and the mariadb CLI's own Ctrl-C), KILL of a held statement, of another build.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApprovalRequest } from '../../../broker/approvals/index.js';
import { eventually, sleep } from '../../support/broker.js';
import { directMy, rowsOf, startMysqlBroker, type MysqlTestBroker } from '../../support/mysql.js';

const RULES = `
admin_token: "test-admin-token-0123456789"
rules:
  - { id: hold, tables: ["jit_my_ap_*"], kinds: [ddl, destructive], action: review, timeout: 30s }
  - { id: writes-held, tables: ["jit_my_apw"], kinds: [write], action: review, timeout: 30s }
  - { id: day-to-day, kinds: [read, write], action: allow }
default: deny
`;
const TABLES = ['jit_my_ap_drop', 'jit_my_ap_keep', 'jit_my_ap_left', 'jit_my_apw'];

let t: MysqlTestBroker;
beforeAll(async () => {
  t = await startMysqlBroker(RULES);
  await directMy((c) => c.query(TABLES.map((n) => `DROP TABLE IF EXISTS ${n}; CREATE TABLE ${n} (id INT); INSERT INTO ${n} VALUES (1), (2);`).join('\n')));
});
afterAll(async () => {
  await t?.stop();
  await directMy((c) => c.query(TABLES.map((n) => `DROP TABLE IF EXISTS ${n};`).join('\n')));
});

const exists = async (table: string) => (await rowsOf(`SHOW TABLES LIKE '${table}'`)).length > 0;

/** The request for a statement text: pending already, or the next `requested` event for it. */
function requested(sql: string): Promise<ApprovalRequest> {
  return new Promise((resolve) => {
    const hit = t.broker.approvals.pending().find((r) => r.sql === sql);
    if (hit) return resolve(hit);
    const off = t.broker.approvals.on((e) => {
      if (e.type === 'requested' && e.request.sql === sql) {
        off();
        resolve(e.request);
      }
    });
  });
}

function track<T>(p: Promise<T>) {
  const s = {
    settled: false,
    result: p.then(
      (v) => ({ ok: true as const, v }),
      (e: Error & { errno?: number }) => ({ ok: false as const, e }),
    ),
  };
  void s.result.finally(() => (s.settled = true));
  return s;
}

describe('held for review', () => {
  it('the mariadb CLI: a DROP TABLE waits while pending, and runs once approved', async () => {
    const q = track(t.cli(await t.token({ build: 'build-my-ap' }), ['app', '-e', 'DROP TABLE jit_my_ap_drop']));
    const request = await requested('DROP TABLE jit_my_ap_drop');
    expect(request).toMatchObject({ state: 'pending', target: 'app', ruleId: 'hold', kinds: ['destructive'], build: 'build-my-ap' });
    await sleep(300);
    expect(q.settled).toBe(false);
    expect(await exists('jit_my_ap_drop')).toBe(true);
    expect((await t.broker.approvals.decide(request.id, { approve: true, by: 'U1', reason: 'planned' })).ok).toBe(true);
    const r = await q.result;
    expect(r.ok && r.v).toMatchObject({ code: 0, stderr: '' });
    expect(await exists('jit_my_ap_drop')).toBe(false);
    const [st] = await eventually(async () => {
      const rows = await t.broker.store.listStatements(request.sessionId);
      return rows[0]?.tag ? rows : null;
    });
    expect(st).toMatchObject({ decision: 'review', ruleId: 'hold', approvalId: request.id, tag: 'OK, 0 affected', error: null });
  });

  it('denied: ERR 1227 naming who and why, nothing ran, and the session goes on', async () => {
    const c = await t.connect(await t.token());
    try {
      const q = track(c.query('DROP TABLE jit_my_ap_keep'));
      const request = await requested('DROP TABLE jit_my_ap_keep');
      await t.broker.approvals.decide(request.id, { approve: false, by: 'U123', reason: 'not during business hours' });
      const r = await q.result;
      expect(!r.ok && r.e).toMatchObject({
        errno: 1227,
        message: expect.stringContaining('denied by U123 (reason: not during business hours); approval request'),
      });
      expect(await exists('jit_my_ap_keep')).toBe(true);
      expect((await c.query('SELECT 41 + 1 AS n'))[0]).toEqual([{ n: 42 }]);
    } finally {
      await c.end();
    }
  });

  it('a client that disconnects while held cancels its request; the statement never runs', async () => {
    const c = await t.connect(await t.token());
    c.on('error', () => {});
    void c.query('DROP TABLE jit_my_ap_left').catch(() => {});
    const request = await requested('DROP TABLE jit_my_ap_left');
    c.destroy();
    const ended = await eventually(async () => {
      const r = await t.broker.store.getApproval(request.id);
      return r?.state === 'cancelled' ? r : null;
    });
    expect(ended.reason).toMatch(/client disconnected/);
    expect(await exists('jit_my_ap_left')).toBe(true);
  });

  it('a prepared statement is held at each execute (not at prepare), and runs when approved', async () => {
    const c = await t.connect(await t.token());
    try {
      const sql = 'INSERT INTO jit_my_apw VALUES (?)';
      const q = track(c.execute(sql, [7]));
      const request = await requested(sql);
      await t.broker.approvals.decide(request.id, { approve: true, by: 'U1' });
      expect((await q.result).ok).toBe(true);
      expect(await rowsOf('SELECT id FROM jit_my_apw ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }, { id: 7 }]);
      const rows = await t.broker.store.listStatements(request.sessionId);
      expect(rows.map((r) => [r.protocol, r.decision, r.approvalId])).toEqual([['execute', 'review', request.id]]);
    } finally {
      await c.end();
    }
  });
});

describe('KILL', () => {
  const connect = async (build: string) => t.connect(await t.token({ build }));

  it('KILL QUERY <broker id> from another connection of the same build interrupts a running SLEEP upstream', async () => {
    const a = await connect('build-kill');
    const b = await connect('build-kill');
    try {
      const [[ids]] = (await a.query('SELECT CONNECTION_ID() AS upstream')) as unknown as [[{ upstream: number }]];
      expect(ids.upstream).not.toBe(a.threadId); // the broker's id is not the server's
      const started = Date.now();
      const q = track(a.query('SELECT SLEEP(10) AS s'));
      await sleep(300);
      await b.query(`KILL QUERY ${a.threadId}`);
      const r = await q.result;
      const interrupted = r.ok ? (r.v[0] as unknown as { s: number }[])[0]!.s === 1 : r.e.errno === 1317;
      expect(interrupted).toBe(true);
      expect(Date.now() - started).toBeLessThan(5000);
      expect((await a.query('SELECT 1 AS n'))[0]).toEqual([{ n: 1 }]); // KILL QUERY leaves the connection
      const sessions = await t.broker.store.listSessions({ build: 'build-kill' });
      const kills = (await Promise.all(sessions.map((s) => t.broker.store.listStatements(s.id)))).flat().filter((s) => s.sql.startsWith('KILL'));
      expect(kills).toEqual([
        expect.objectContaining({ sql: `KILL QUERY ${a.threadId}`, decision: 'allow', ruleId: 'broker:kill-own-build', kinds: ['admin'] }),
      ]);
    } finally {
      await a.end();
      await b.end();
    }
  });

  it('the mariadb CLI: Ctrl-C kills the running query through the broker', async () => {
    const token = await t.token({ build: 'build-kill-cli' });
    const cli = spawn('mariadb', ['-h', t.host, '-P', String(t.port), '-u', 'ci', `-p${token}`, 'app', '-e', 'SELECT SLEEP(10)'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    cli.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number>((resolve) => cli.on('exit', (code) => resolve(code ?? -1)));
    const started = Date.now();
    await eventually(async () => t.broker.mysql!.connections.size > 0 && (await t.broker.store.listSessions({ build: 'build-kill-cli' })).length > 0);
    await sleep(300);
    cli.kill('SIGINT');
    await exited;
    expect(Date.now() - started).toBeLessThan(6000);
    expect(err).toMatch(/Query execution was interrupted|query killed/);
  });

  it('KILL CONNECTION of the same build ends that connection; ids of other builds are unknown', async () => {
    const a = await connect('build-kill2');
    const b = await connect('build-kill2');
    const other = await connect('build-other');
    a.on('error', () => {});
    try {
      await expect(other.query(`KILL QUERY ${a.threadId}`)).rejects.toMatchObject({
        errno: 1094,
        message: expect.stringContaining(`Unknown thread id: ${a.threadId}`),
      });
      await expect(other.query('KILL 999999')).rejects.toMatchObject({ errno: 1094 });
      await b.query(`KILL ${a.threadId}`);
      await expect(a.query('SELECT 1')).rejects.toThrow();
      expect((await b.query('SELECT 2 AS n'))[0]).toEqual([{ n: 2 }]);
    } finally {
      a.destroy();
      await b.end();
      await other.end();
    }
  });

  it('KILL QUERY of a statement held for review withdraws its request', async () => {
    const a = await connect('build-kill3');
    const b = await connect('build-kill3');
    try {
      const q = track(a.query('TRUNCATE jit_my_ap_keep'));
      const request = await requested('TRUNCATE jit_my_ap_keep');
      await b.query(`KILL QUERY ${a.threadId}`);
      const r = await q.result;
      expect(!r.ok && r.e).toMatchObject({ errno: 1227, message: expect.stringContaining('was cancelled') });
      expect(await t.broker.store.getApproval(request.id)).toMatchObject({ state: 'cancelled' });
      expect(await rowsOf('SELECT COUNT(*) AS n FROM jit_my_ap_keep')).toEqual([{ n: 2 }]);
    } finally {
      await a.end();
      await b.end();
    }
  });
});
