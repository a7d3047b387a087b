// Statements held for review, as clients see them through a real broker against the real PostgreSQL:
// held while pending, released on approval, refused on deny/timeout/cancel, never run for a client
// that left; other sessions go on meanwhile.
import { spawn } from 'node:child_process';
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApprovalRequest } from '../../broker/approvals/index.js';
import { direct, eventually, psqlEnv, run, sleep, startTestBroker, type TestBroker } from '../support/broker.js';

const ADMIN = 'test-admin-token-0123456789';
const RULES = `
admin_token: "${ADMIN}"
rules:
  - { id: hold, tables: ["jit_ap_*"], kinds: [ddl, destructive], action: review, timeout: 30s }
  - { id: two-keys, tables: ["jit_ap2_*"], kinds: [destructive], action: review, min_approvals: 2, timeout: 30s }
  - { id: quick, tables: ["jit_apq_*"], kinds: [destructive], action: review, timeout: 1s }
  - { id: per-session, tables: ["jit_aps_*"], kinds: [write], action: review, scope: session, timeout: 30s }
  - { id: listed, tables: ["jit_apl_*"], kinds: [destructive], action: review, approvers: [U111, "dba@acme.com", "@dba-oncall"], timeout: 30s }
  - { id: writes-held, tables: ["jit_apm_*", "jit_ape_*"], kinds: [write], action: review, timeout: 60s }
  - { id: scratch, tables: ["jit_ap*"], kinds: [read, write, ddl], action: allow }
  - { id: day-to-day, kinds: [read, write], action: allow }
default: deny
`;
const TABLES = [
  'jit_ap_drop',
  'jit_ap_keep',
  'jit_ap_gone',
  'jit_ap_gone2',
  'jit_ap_own',
  'jit_ap_tx',
  'jit_ap2_t',
  'jit_apq_t',
  'jit_aps_t',
  'jit_apl_t',
  'jit_apm_t',
  'jit_ape_t',
  'jit_ap_other',
];

let t: TestBroker;
beforeAll(async () => {
  t = await startTestBroker(RULES);
  await direct((c) =>
    c.query(TABLES.map((n) => `DROP TABLE IF EXISTS ${n}; CREATE TABLE ${n} (id int, at timestamptz); INSERT INTO ${n} (id) VALUES (1), (2);`).join('\n')),
  );
  await direct((c) => c.query('TRUNCATE jit_apm_t, jit_ape_t, jit_aps_t'));
});
afterAll(async () => {
  await t?.stop();
  await direct((c) => c.query(TABLES.map((n) => `DROP TABLE IF EXISTS ${n};`).join('\n')));
});

const exists = (table: string) => direct(async (c) => (await c.query('SELECT to_regclass($1) IS NOT NULL AS e', [table])).rows[0].e as boolean);
const count = (table: string) => direct(async (c) => (await c.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n as number);

async function connect(claims?: Record<string, unknown>): Promise<pg.Client> {
  const c = new pg.Client(t.pgConfig(await t.token({ build: 'build-approvals', claims })));
  c.on('error', () => {}); // a client the test disconnects on purpose
  await c.connect();
  return c;
}

/** The request for a statement text: pending already, or the next `requested` event for it (with when it arrived). */
function requested(sql: string): Promise<{ request: ApprovalRequest; at: number }> {
  return new Promise((resolve) => {
    const hit = t.broker.approvals.pending().find((r) => r.sql === sql);
    if (hit) return resolve({ request: hit, at: Number.NaN });
    const off = t.broker.approvals.on((e) => {
      if (e.type === 'requested' && e.request.sql === sql) {
        off();
        resolve({ request: e.request, at: performance.now() });
      }
    });
  });
}

async function api(method: 'GET' | 'POST', path: string, body?: object): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${t.httpUrl}/api/approvals${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** Tracks whether a promise settled, without letting a rejection go unhandled. */
function track<T>(p: Promise<T>) {
  const s = {
    settled: false,
    result: p.then(
      (v) => ({ ok: true as const, v }),
      (e: Error & { code?: string }) => ({ ok: false as const, e }),
    ),
  };
  void s.result.finally(() => (s.settled = true));
  return s;
}

describe('held, then decided', () => {
  it('psql: a DROP TABLE waits while pending, and runs once approved through the HTTP API', async () => {
    const env = psqlEnv(t, await t.token({ build: 'build-approvals' }));
    const q = track(run('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-c', 'DROP TABLE jit_ap_drop'], env));
    const { request } = await requested('DROP TABLE jit_ap_drop');
    expect(request).toMatchObject({ state: 'pending', target: 'app', ruleId: 'hold', kinds: ['destructive'], subject: 'ci:test', build: 'build-approvals' });
    expect((await api('GET', '/?state=pending')).json.approvals).toEqual(expect.arrayContaining([expect.objectContaining({ id: request.id })]));
    await sleep(300);
    expect(q.settled).toBe(false);
    expect(await exists('jit_ap_drop')).toBe(true);
    const res = await api('POST', `/${request.id}/approve`, { by: 'alice', reason: 'planned' });
    expect(res).toMatchObject({ status: 200, json: { ok: true, approval: { state: 'approved', decidedBy: 'api:alice', reason: 'planned' } } });
    const r = await q.result;
    expect(r.ok && r.v).toMatchObject({ code: 0, stdout: 'DROP TABLE\n' });
    expect(await exists('jit_ap_drop')).toBe(false);
    // The replay shows the statement held, its approval, and its outcome.
    const [st] = await eventually(async () => {
      const rows = await t.broker.store.listStatements(request.sessionId);
      return rows[0]?.tag ? rows : null;
    });
    expect(st).toMatchObject({ decision: 'review', ruleId: 'hold', approvalId: request.id, tag: 'DROP TABLE', error: null });
    expect(await t.broker.store.getApproval(request.id)).toMatchObject({ state: 'approved', statementId: st!.id, decidedBy: 'api:alice' });
  });

  it('denied with a reason: 42501 naming who and why, nothing ran, and the session goes on', async () => {
    const c = await connect();
    try {
      const q = track(c.query('DROP TABLE jit_ap_keep'));
      const { request } = await requested('DROP TABLE jit_ap_keep');
      const d = await t.broker.approvals.decide(request.id, { approve: false, by: 'U123', reason: 'not during business hours' });
      expect(d.ok).toBe(true);
      const r = await q.result;
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.e.code).toBe('42501');
        expect(r.e.message).toContain('denied by U123 (reason: not during business hours)');
        expect(r.e.message).toContain(`approval request ${request.id} under rule 'hold'`);
      }
      expect(await exists('jit_ap_keep')).toBe(true);
      expect((await c.query('SELECT 41 + 1 AS n')).rows).toEqual([{ n: 42 }]);
      // A decision after the end changes nothing, and says how it ended.
      const late = await api('POST', `/${request.id}/approve`, {});
      expect(late.status).toBe(409);
      expect(late.json).toMatchObject({ ok: false, code: 'ended', approval: { state: 'denied', decidedBy: 'U123' } });
      expect(late.json.message).toMatch(/already ended: denied by U123 at .* \(not during business hours\)/);
      expect(await exists('jit_ap_keep')).toBe(true);
    } finally {
      await c.end();
    }
  });

  it('no decision within the timeout: refused, and the request is expired', async () => {
    const c = await connect();
    try {
      const started = Date.now();
      const err = await c.query('DELETE FROM jit_apq_t').catch((e: Error & { code: string }) => e);
      expect(err).toMatchObject({ code: '42501', message: expect.stringMatching(/no decision within 1s; approval request a_\w+ under rule 'quick' expired/) });
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      const [r] = await t.broker.approvals.list({ state: 'expired' });
      expect(r).toMatchObject({ sql: 'DELETE FROM jit_apq_t', reason: 'no decision within 1s' });
      expect(await count('jit_apq_t')).toBe(2);
    } finally {
      await c.end();
    }
  });

  it('min_approvals 2 needs two distinct approvers', async () => {
    const c = await connect();
    try {
      const q = track(c.query('TRUNCATE jit_ap2_t'));
      const { request } = await requested('TRUNCATE jit_ap2_t');
      expect(await api('POST', `/${request.id}/approve`, { by: 'alice' })).toMatchObject({
        status: 200,
        json: { approval: { state: 'pending', approvals: [{ by: 'api:alice' }] } },
      });
      expect(await api('POST', `/${request.id}/approve`, { by: 'alice' })).toMatchObject({ status: 409, json: { code: 'already_approved' } });
      await sleep(200);
      expect(q.settled).toBe(false);
      expect(await count('jit_ap2_t')).toBe(2);
      expect((await t.broker.approvals.decide(request.id, { approve: true, by: 'U2' })).ok).toBe(true);
      expect((await q.result).ok).toBe(true);
      expect(await count('jit_ap2_t')).toBe(0);
    } finally {
      await c.end();
    }
  });

  it('the requester cannot approve their own request; an approvers list is enforced for Slack deciders', async () => {
    const c = await connect({ email: 'dev@acme.com' });
    try {
      const own = track(c.query('TRUNCATE jit_ap_own'));
      const { request } = await requested('TRUNCATE jit_ap_own');
      expect(await api('POST', `/${request.id}/approve`, { by: 'dev', email: 'dev@acme.com' })).toMatchObject({ status: 403, json: { code: 'own_request' } });
      expect(await t.broker.approvals.decide(request.id, { approve: true, by: 'U7', email: 'DEV@acme.com' })).toMatchObject({ ok: false, code: 'own_request' });
      expect(await api('POST', `/${request.id}/deny`, { reason: 'ask someone else' })).toMatchObject({ status: 200 });
      expect(await own.result).toMatchObject({
        ok: false,
        e: { code: '42501', message: expect.stringContaining('denied by api:admin (reason: ask someone else)') },
      });
      expect(await count('jit_ap_own')).toBe(2);

      const listed = track(c.query('TRUNCATE jit_apl_t'));
      const l = await requested('TRUNCATE jit_apl_t');
      expect(await t.broker.approvals.decide(l.request.id, { approve: true, by: 'U222' })).toMatchObject({ ok: false, code: 'not_approver' });
      expect(await t.broker.approvals.decide(l.request.id, { approve: true, by: 'U333', groups: ['@dba-oncall'] })).toMatchObject({ ok: true });
      expect((await listed.result).ok).toBe(true);
      expect(await count('jit_apl_t')).toBe(0);
    } finally {
      await c.end();
    }
  });

  it('extended protocol: held at Execute (not at Parse), recorded once, and runs when approved', async () => {
    const c = await connect();
    try {
      const sql = 'INSERT INTO jit_ape_t (id) VALUES ($1)';
      const q = track(c.query(sql, [7]));
      const { request } = await requested(sql);
      await t.broker.approvals.decide(request.id, { approve: true, by: 'U1' });
      expect((await q.result).ok).toBe(true);
      expect(await direct(async (d) => (await d.query('SELECT id FROM jit_ape_t')).rows)).toEqual([{ id: 7 }]);
      const rows = await t.broker.store.listStatements(request.sessionId);
      expect(rows.map((r) => [r.protocol, r.decision, r.approvalId])).toEqual([['execute', 'review', request.id]]);
    } finally {
      await c.end();
    }
  });

  it('a denial inside a transaction block aborts it: COMMIT rolls back', async () => {
    const c = await connect();
    try {
      await c.query('BEGIN');
      await c.query('INSERT INTO jit_ap_tx (id) VALUES (3)');
      const q = track(c.query('TRUNCATE jit_ap_tx'));
      const { request } = await requested('TRUNCATE jit_ap_tx');
      await t.broker.approvals.decide(request.id, { approve: false, by: 'U1', reason: 'no' });
      expect(await q.result).toMatchObject({ ok: false, e: { code: '42501' } });
      expect((await c.query('COMMIT')).command).toBe('ROLLBACK');
      expect(await count('jit_ap_tx')).toBe(2);
    } finally {
      await c.end();
    }
  });
});

describe('the client goes away while held', () => {
  it('node-postgres ends its connection: the request is cancelled and the statement never runs', async () => {
    const c = await connect();
    void c.query('DROP TABLE jit_ap_gone').catch(() => {});
    const { request } = await requested('DROP TABLE jit_ap_gone');
    await c.end();
    const r = await eventually(async () => {
      const x = await t.broker.approvals.get(request.id);
      return x?.state === 'cancelled' ? x : null;
    });
    expect(r).toMatchObject({ reason: 'client disconnected', decidedBy: null });
    expect(await api('POST', `/${request.id}/approve`, {})).toMatchObject({ status: 409, json: { code: 'ended' } });
    await sleep(200);
    expect(await exists('jit_ap_gone')).toBe(true);
    const [st] = await t.broker.store.listStatements(request.sessionId);
    expect(st).toMatchObject({ decision: 'review', approvalId: request.id, durationMs: null });
    expect((await t.broker.store.getSession(request.sessionId))?.endReason).toBe('client disconnected');
  });

  it('a CancelRequest (Ctrl-C) withdraws the request: refused at once, the session goes on', async () => {
    const c = await connect();
    try {
      const q = track(c.query('TRUNCATE jit_ap_gone'));
      const { request } = await requested('TRUNCATE jit_ap_gone');
      // node-postgres keeps the BackendKeyData the broker sent; a CancelRequest needs no TLS.
      const key = c as unknown as { processID: number; secretKey: number };
      const msg = Buffer.alloc(16);
      msg.writeInt32BE(16, 0);
      msg.writeInt32BE(80877102, 4);
      msg.writeInt32BE(key.processID, 8);
      msg.writeInt32BE(key.secretKey, 12);
      await new Promise<void>((resolve, reject) => {
        const s = net.connect(t.port, t.host, () => s.end(msg));
        s.on('close', () => resolve()).on('error', reject);
      });
      expect(await q.result).toMatchObject({
        ok: false,
        e: { code: '42501', message: expect.stringContaining(`${request.id} under rule 'hold' was cancelled: the client cancelled the statement`) },
      });
      expect((await t.broker.approvals.get(request.id))?.state).toBe('cancelled');
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      expect(await count('jit_ap_gone')).toBe(2);
    } finally {
      await c.end();
    }
  });

  it('psql is killed: the same', async () => {
    const child = spawn('psql', ['-X', '-c', 'DROP TABLE jit_ap_gone2'], { env: { ...process.env, ...psqlEnv(t, await t.token()) }, stdio: 'ignore' });
    const { request } = await requested('DROP TABLE jit_ap_gone2');
    child.kill('SIGKILL');
    await eventually(async () => (await t.broker.approvals.get(request.id))?.state === 'cancelled');
    expect(await t.broker.approvals.decide(request.id, { approve: true, by: 'U1' })).toMatchObject({ ok: false, code: 'ended' });
    await sleep(200);
    expect(await exists('jit_ap_gone2')).toBe(true);
  });
});

describe('scope: session', () => {
  it('an approved text runs again in its session without asking; another session (or text) is held', async () => {
    const a = await connect();
    const b = await connect();
    try {
      const sql = 'INSERT INTO jit_aps_t (id) VALUES (1)';
      const first = track(a.query(sql));
      const { request } = await requested(sql);
      await t.broker.approvals.decide(request.id, { approve: true, by: 'U1' });
      expect((await first.result).ok).toBe(true);
      const before = t.broker.approvals.pending().length;
      await a.query(sql); // not held: would wait 30s otherwise
      expect(t.broker.approvals.pending().length).toBe(before);
      const rows = await t.broker.store.listStatements(request.sessionId);
      expect(rows.map((r) => [r.decision, r.approvalId])).toEqual([
        ['review', request.id],
        ['review', request.id],
      ]);
      expect(rows[1]!.message).toContain(`approved for this session (approval ${request.id})`);

      const other = track(b.query(sql));
      const held = await requested(sql);
      expect(held.request.sessionId).not.toBe(request.sessionId);
      await t.broker.approvals.decide(held.request.id, { approve: false, by: 'U1', reason: 'once is enough' });
      expect(await other.result).toMatchObject({ ok: false });
      const different = track(a.query('INSERT INTO jit_aps_t (id) VALUES (2)'));
      const d = await requested('INSERT INTO jit_aps_t (id) VALUES (2)');
      await t.broker.approvals.cancel(d.request.id, 'test over');
      expect(await different.result).toMatchObject({ ok: false, e: { message: expect.stringContaining('was cancelled: test over') } });
      expect(await count('jit_aps_t')).toBe(2);
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });
});

describe('many at once', () => {
  it('other sessions run normally while a statement is held', async () => {
    const held = await connect();
    const other = await connect();
    try {
      const q = track(held.query('DROP TABLE jit_ap_other'));
      const { request } = await requested('DROP TABLE jit_ap_other');
      const started = performance.now();
      for (let i = 0; i < 50; i++) await other.query('SELECT 1');
      await other.query('INSERT INTO jit_ap_other (id) VALUES (3)');
      const psql = await run('psql', ['-X', '-A', '-t', '-c', 'SELECT count(*) FROM jit_ap_other'], psqlEnv(t, await t.token()));
      expect(psql.stdout.trim()).toBe('3');
      expect(performance.now() - started).toBeLessThan(5000);
      expect(q.settled).toBe(false);
      await t.broker.approvals.decide(request.id, { approve: false, by: 'U1', reason: 'keep it' });
      expect((await q.result).ok).toBe(false);
    } finally {
      await Promise.all([held.end(), other.end()]);
    }
  });

  it('20 statements held across 20 sessions, decided in random order: each client gets its own answer', async () => {
    const N = 20;
    const clients = await Promise.all(Array.from({ length: N }, () => connect()));
    try {
      const sqlOf = (i: number) => `INSERT INTO jit_apm_t SELECT ${i}, clock_timestamp()`;
      const arrivals = Array.from({ length: N }, (_, i) => requested(sqlOf(i)));
      const sent: number[] = [];
      const queries = clients.map((c, i) => {
        sent[i] = performance.now();
        return track(c.query(sqlOf(i)));
      });
      const reqs = await Promise.all(arrivals);
      expect(new Set(reqs.map((r) => r.request.sessionId)).size).toBe(N);
      expect(queries.every((q) => !q.settled)).toBe(true);
      const order = [...Array(N).keys()].sort(() => Math.random() - 0.5);
      const decidedAt = new Map<number, number>();
      for (const i of order) {
        const id = reqs[i]!.request.id;
        decidedAt.set(i, performance.timeOrigin + performance.now());
        if (i % 2 === 0) {
          if (i % 4 === 0) expect((await api('POST', `/${id}/approve`, { by: 'bulk' })).status).toBe(200);
          else expect((await t.broker.approvals.decide(id, { approve: true, by: 'U1' })).ok).toBe(true);
        } else expect((await t.broker.approvals.decide(id, { approve: false, by: 'U1', reason: `no ${i}` })).ok).toBe(true);
      }
      const results = await Promise.all(queries.map((q) => q.result));
      results.forEach((r, i) => {
        if (i % 2 === 0) expect(r.ok, `client ${i}`).toBe(true);
        else expect(!r.ok && r.e.message, `client ${i}`).toContain(`(reason: no ${i})`);
      });
      const rows = await direct(
        async (c) => (await c.query('SELECT id, extract(epoch FROM at)::float8 * 1000 AS ms FROM jit_apm_t ORDER BY id')).rows as { id: number; ms: number }[],
      );
      expect(rows.map((r) => r.id)).toEqual([...Array(N).keys()].filter((i) => i % 2 === 0));
      // Figures: client send → `requested` event, and decide() call → the statement running in PostgreSQL.
      const toEvent = reqs.map((r, i) => r.at - sent[i]!).filter(Number.isFinite);
      const toDb = rows.map((r) => r.ms - decidedAt.get(r.id)!);
      const stats = (xs: number[]) => {
        const s = [...xs].sort((a, b) => a - b);
        return `median ${s[Math.floor(s.length / 2)]!.toFixed(2)} ms, max ${s[s.length - 1]!.toFixed(2)} ms (n=${s.length})`;
      };
      console.log(`[approvals] client send → requested event: ${stats(toEvent)}`);
      console.log(`[approvals] decide() call → statement running upstream: ${stats(toDb)}`);
      expect(Math.max(...toDb)).toBeLessThan(1000);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });
});
