// Blast radius on PostgreSQL: a statement held for approval is estimated on its session's own upstream connection,
// without running it — EXPLAIN's rows for DELETE/UPDATE, the catalog's rows and size for TRUNCATE/DROP — and the
// estimate is added to the request after it was made. Real broker, real PostgreSQL, real client.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApprovalRequest } from '../../broker/approvals/index.js';
import type { BlastRadius } from '../../broker/store/types.js';
import { direct, startTestBroker, type TestBroker } from '../support/broker.js';

const ADMIN = 'test-admin-token-0123456789';
const RULES = `
admin_token: "${ADMIN}"
rules:
  - { id: free, tables: ["jit_brf_*"], kinds: [read, write, ddl], action: allow }
  - { id: hold, tables: ["jit_br_*"], kinds: [write, ddl, destructive], action: review, timeout: 60s }
  - { id: day-to-day, kinds: [read], action: allow }
default: deny
`;

let t: TestBroker;
beforeAll(async () => {
  t = await startTestBroker(RULES);
  await direct((c) =>
    c.query(`
      DROP TABLE IF EXISTS jit_br_big, jit_br_drop, jit_br_tx, jit_br_calls, jit_brf_t;
      DROP FUNCTION IF EXISTS jit_br_noisy(int);
      CREATE TABLE jit_br_big (id int PRIMARY KEY, pad text);
      INSERT INTO jit_br_big SELECT g, repeat('x', 50) FROM generate_series(1, 10000) g;
      CREATE TABLE jit_br_drop (id int);
      INSERT INTO jit_br_drop SELECT generate_series(1, 3000);
      CREATE TABLE jit_br_tx (id int);
      INSERT INTO jit_br_tx SELECT generate_series(1, 1000);
      CREATE TABLE jit_br_calls (at timestamptz);
      CREATE TABLE jit_brf_t (id int);
      -- A volatile function with a side effect: every call leaves a row in jit_br_calls.
      CREATE FUNCTION jit_br_noisy(x int) RETURNS boolean VOLATILE LANGUAGE plpgsql AS
        $$ BEGIN INSERT INTO jit_br_calls VALUES (now()); RETURN x < 10; END $$;
      ANALYZE jit_br_big, jit_br_drop, jit_br_tx;`),
  );
});
afterAll(async () => {
  await t?.stop();
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_br_big, jit_br_drop, jit_br_tx, jit_br_calls, jit_brf_t; DROP FUNCTION IF EXISTS jit_br_noisy(int)'));
});

const count = (table: string) => direct(async (c) => (await c.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n as number);

async function connect(): Promise<pg.Client> {
  const c = new pg.Client(t.pgConfig(await t.token({ build: 'build-blast' })));
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** The request for a statement text once made, and the estimate added to it (null: it ended without one). */
function watch(sql: string): { request: Promise<ApprovalRequest>; estimate: Promise<BlastRadius | null> } {
  let made!: (r: ApprovalRequest) => void;
  let estimated!: (e: BlastRadius | null) => void;
  const request = new Promise<ApprovalRequest>((r) => (made = r));
  const estimate = new Promise<BlastRadius | null>((r) => (estimated = r));
  const off = t.broker.approvals.on((e) => {
    if (e.request.sql !== sql) return;
    if (e.type === 'requested') made(e.request);
    else if (e.request.estimate || e.request.state !== 'pending') {
      off();
      estimated(e.request.estimate ?? null);
    }
  });
  return { request, estimate };
}

/** Runs `sql` (held), with what watch() sees of it; the query's outcome is settled, never left to reject unhandled. */
function hold(c: pg.Client, sql: string) {
  const w = watch(sql);
  const result = c.query(sql).then(
    (r) => ({ ok: true as const, r }),
    (e: Error) => ({ ok: false as const, e }),
  );
  return { ...w, result };
}

const decide = (id: string, approve: boolean) => t.broker.approvals.decide(id, { approve, by: 'U1', reason: approve ? null : 'not now' });

describe('blast radius on PostgreSQL', () => {
  it('DELETE: the planner estimate of the rows it would delete, within its error; nothing deleted until approved', async () => {
    const c = await connect();
    try {
      const sql = 'DELETE FROM jit_br_big WHERE id < 2500';
      const h = hold(c, sql);
      const request = await h.request;
      expect(request.estimate ?? null).toBeNull(); // posted at once, without waiting for the estimate
      const e = await h.estimate;
      expect(e).toMatchObject({ source: 'explain', tables: ['jit_br_big'] });
      expect(e!.rows).toBeGreaterThanOrEqual(2499 * 0.8);
      expect(e!.rows).toBeLessThanOrEqual(2499 * 1.2);
      expect(e!.text).toMatch(/^≈ 2,\d{3} rows of jit_br_big$/);
      // Kept with the request, and what the admin API and `jit approvals` read.
      expect((await t.broker.approvals.get(request.id))?.estimate).toEqual(e);
      expect(await count('jit_br_big')).toBe(10000);
      const api = await fetch(`${t.httpUrl}/api/approvals/${request.id}`, { headers: { authorization: `Bearer ${ADMIN}` } });
      expect(((await api.json()) as { estimate: BlastRadius }).estimate).toEqual(e);
      await decide(request.id, true);
      const r = await h.result;
      expect(r.ok && r.r.rowCount).toBe(2499);
      expect(await count('jit_br_big')).toBe(7501);
    } finally {
      await c.end();
    }
  });

  it('TRUNCATE and DROP TABLE: rows and size from the catalog', async () => {
    const c = await connect();
    try {
      const size = await direct(async (d) => Number((await d.query("SELECT pg_total_relation_size('jit_br_drop') AS s")).rows[0].s));
      const tr = hold(c, 'TRUNCATE jit_br_drop');
      const e = await tr.estimate;
      expect(e).toEqual({
        source: 'catalog',
        tables: ['jit_br_drop'],
        rows: 3000,
        bytes: size,
        text: expect.stringMatching(/^≈ 3,000 rows of jit_br_drop \(\d+ kB\)$/),
      });
      await decide((await tr.request).id, false);
      expect((await tr.result).ok).toBe(false);
      const dr = hold(c, 'DROP TABLE jit_br_drop');
      expect(await dr.estimate).toMatchObject({ source: 'catalog', tables: ['jit_br_drop'], rows: 3000, bytes: size });
      await decide((await dr.request).id, false);
      expect((await dr.result).ok).toBe(false);
      expect(await count('jit_br_drop')).toBe(3000);
    } finally {
      await c.end();
    }
  });

  it('UPDATE with a volatile function in its WHERE: planned, never called; the statement does not run', async () => {
    const c = await connect();
    try {
      const sql = 'UPDATE jit_br_big SET pad = NULL WHERE jit_br_noisy(id)';
      const h = hold(c, sql);
      const e = await h.estimate;
      expect(e).toMatchObject({ source: 'explain', tables: ['jit_br_big'] });
      expect(e!.rows).toBeGreaterThan(0);
      expect(await count('jit_br_calls')).toBe(0);
      await decide((await h.request).id, false);
      expect((await h.result).ok).toBe(false);
      expect(await count('jit_br_calls')).toBe(0);
      expect(await direct(async (d) => (await d.query('SELECT count(*)::int AS n FROM jit_br_big WHERE pad IS NULL')).rows[0].n)).toBe(0);
    } finally {
      await c.end();
    }
  });

  it('in an open transaction: estimated within it, and the transaction goes on and commits', async () => {
    const c = await connect();
    try {
      await c.query('BEGIN');
      await c.query('INSERT INTO jit_brf_t VALUES (1)');
      const h = hold(c, 'DELETE FROM jit_br_tx WHERE id <= 100');
      const e = await h.estimate;
      expect(e).toMatchObject({ source: 'explain', tables: ['jit_br_tx'] });
      expect(e!.rows).toBeGreaterThanOrEqual(80);
      expect(e!.rows).toBeLessThanOrEqual(120);
      await decide((await h.request).id, true);
      const r = await h.result;
      expect(r.ok && r.r.rowCount).toBe(100);
      await c.query('INSERT INTO jit_brf_t VALUES (2)');
      await c.query('COMMIT');
      expect(await count('jit_brf_t')).toBe(2);
      expect(await count('jit_br_tx')).toBe(900);
    } finally {
      await c.end();
    }
  });

  it('in an aborted transaction: no estimate, and nothing changes', async () => {
    const c = await connect();
    try {
      await c.query('BEGIN');
      await expect(c.query('SELECT 1/0')).rejects.toThrow(/division by zero/);
      const h = hold(c, 'DELETE FROM jit_br_tx WHERE id <= 10');
      const request = await h.request;
      await decide(request.id, false);
      expect(await h.estimate).toBeNull();
      expect((await t.broker.approvals.get(request.id))?.estimate ?? null).toBeNull();
      expect((await h.result).ok).toBe(false);
      await expect(c.query('SELECT 1')).rejects.toThrow(/current transaction is aborted/);
      await c.query('ROLLBACK');
      expect((await c.query('SELECT 41 + 1 AS n')).rows).toEqual([{ n: 42 }]);
      expect(await count('jit_br_tx')).toBe(900);
    } finally {
      await c.end();
    }
  });

  it('a table locked by someone else: the request is made while the estimate waits; approved meanwhile, the statement runs after it', async () => {
    const locker = new pg.Client({ connectionString: process.env.JIT_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test' });
    await locker.connect();
    const c = await connect();
    try {
      await locker.query('BEGIN; LOCK TABLE jit_br_tx IN ACCESS EXCLUSIVE MODE');
      const h = hold(c, 'DELETE FROM jit_br_tx WHERE id > 990');
      const request = await h.request; // made while the lock is held: the estimate cannot have finished
      expect(request.estimate ?? null).toBeNull();
      // Approved while the estimate still waits for the lock: the statement goes upstream behind it.
      expect((await decide(request.id, true)).ok).toBe(true);
      await locker.query('COMMIT');
      const r = await h.result;
      expect(r.ok && r.r.rowCount).toBe(10);
      expect((await c.query('SELECT count(*)::int AS n FROM jit_br_tx')).rows).toEqual([{ n: 890 }]);
    } finally {
      await c.end();
      await locker.end();
    }
  });
});
