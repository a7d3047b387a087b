// Blast radius on MariaDB: a held statement is estimated on its session's own upstream connection without running it
// — EXPLAIN FORMAT=JSON rows for DELETE/UPDATE, information_schema.TABLES for TRUNCATE/DROP — and the estimate is
// added to the request after it was made. Real broker, real MariaDB, real client (mysql2).
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApprovalRequest } from '../../broker/approvals/index.js';
import type { BlastRadius } from '../../broker/store/types.js';
import { MYSQL_UPSTREAM, startMysqlBroker, type MysqlTestBroker } from '../support/mysql.js';

const RULES = `
admin_token: "test-admin-token-0123456789"
rules:
  - { id: free, tables: ["jit_myf_*"], kinds: [read, write], action: allow }
  - { id: hold, tables: ["jit_mybr_*"], kinds: [write, ddl, destructive], action: review, timeout: 60s }
  - { id: day-to-day, kinds: [read], action: allow }
default: deny
`;

let t: MysqlTestBroker;
let direct: mysql.Connection;
beforeAll(async () => {
  t = await startMysqlBroker(RULES);
  direct = await mysql.createConnection({ uri: MYSQL_UPSTREAM, multipleStatements: true });
  await direct.query(`
    DROP TABLE IF EXISTS jit_mybr_big, jit_mybr_drop, jit_mybr_calls, jit_myf_t;
    DROP FUNCTION IF EXISTS jit_mybr_noisy;
    CREATE TABLE jit_mybr_big (id int PRIMARY KEY, pad varchar(60)) ENGINE=InnoDB;
    INSERT INTO jit_mybr_big SELECT seq, repeat('x', 50) FROM seq_1_to_10000;
    CREATE TABLE jit_mybr_drop (id int PRIMARY KEY) ENGINE=InnoDB;
    INSERT INTO jit_mybr_drop SELECT seq FROM seq_1_to_3000;
    CREATE TABLE jit_mybr_calls (at datetime(6));
    CREATE TABLE jit_myf_t (id int);
    CREATE FUNCTION jit_mybr_noisy(x int) RETURNS int NOT DETERMINISTIC MODIFIES SQL DATA
      BEGIN INSERT INTO jit_mybr_calls VALUES (now(6)); RETURN x < 10; END;
    ANALYZE TABLE jit_mybr_big, jit_mybr_drop;`);
});
afterAll(async () => {
  await t?.stop();
  await direct?.query('DROP TABLE IF EXISTS jit_mybr_big, jit_mybr_drop, jit_mybr_calls, jit_myf_t; DROP FUNCTION IF EXISTS jit_mybr_noisy');
  await direct?.end();
});

const count = async (table: string) => ((await direct.query(`SELECT count(*) AS n FROM ${table}`))[0] as { n: number }[])[0]!.n;

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

function hold(c: mysql.Connection, sql: string) {
  const w = watch(sql);
  const result = c.query(sql).then(
    ([r]) => ({ ok: true as const, r: r as mysql.ResultSetHeader }),
    (e: Error) => ({ ok: false as const, e }),
  );
  return { ...w, result };
}

const decide = (id: string, approve: boolean) => t.broker.approvals.decide(id, { approve, by: 'U1', reason: approve ? null : 'not now' });

describe('blast radius on MariaDB', () => {
  it('DELETE: EXPLAIN FORMAT=JSON rows, within the optimizer error; nothing deleted until approved', async () => {
    const c = await t.connect(await t.token());
    try {
      const sql = 'DELETE FROM jit_mybr_big WHERE id < 2500';
      const h = hold(c, sql);
      expect((await h.request).estimate ?? null).toBeNull();
      const e = await h.estimate;
      // Exactly the optimizer's estimate (InnoDB's records_in_range: rough at the start of a small index, ≈ 2× here) …
      const [[plan]] = (await direct.query(`EXPLAIN ${sql}`)) as unknown as [{ rows: number }[]];
      expect(e).toEqual({
        source: 'explain',
        tables: ['jit_mybr_big'],
        rows: Number(plan!.rows),
        bytes: null,
        text: `≈ ${Number(plan!.rows).toLocaleString('en-US')} rows of jit_mybr_big`,
      });
      // … and within its error of the real count.
      expect(e!.rows).toBeGreaterThanOrEqual(2499 * 0.5);
      expect(e!.rows).toBeLessThanOrEqual(2499 * 2.5);
      expect(await count('jit_mybr_big')).toBe(10000);
      await decide((await h.request).id, true);
      const r = await h.result;
      expect(r.ok && r.r.affectedRows).toBe(2499);
    } finally {
      c.destroy(); // a statement still held (a failed assertion) would keep end() waiting
    }
  });

  it('UPDATE with a function that writes in its WHERE: planned, never called; the statement does not run', async () => {
    const c = await t.connect(await t.token());
    try {
      const sql = 'UPDATE jit_mybr_big SET pad = NULL WHERE jit_mybr_noisy(id)';
      const h = hold(c, sql);
      const e = await h.estimate;
      expect(e).toMatchObject({ source: 'explain', tables: ['jit_mybr_big'] });
      expect(e!.rows).toBeGreaterThan(0);
      expect(await count('jit_mybr_calls')).toBe(0);
      await decide((await h.request).id, false);
      expect((await h.result).ok).toBe(false);
      expect(await count('jit_mybr_calls')).toBe(0);
      expect(await count('jit_mybr_big WHERE pad IS NULL')).toBe(0);
    } finally {
      c.destroy(); // a statement still held (a failed assertion) would keep end() waiting
    }
  });

  it('TRUNCATE and DROP TABLE: rows and size from information_schema.TABLES', async () => {
    const c = await t.connect(await t.token());
    try {
      const [[stats]] = (await direct.query(
        "SELECT TABLE_ROWS AS r, DATA_LENGTH + INDEX_LENGTH AS b FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'jit_mybr_drop'",
      )) as unknown as [{ r: number; b: number }[]];
      for (const sql of ['TRUNCATE TABLE jit_mybr_drop', 'DROP TABLE jit_mybr_drop']) {
        const h = hold(c, sql);
        const e = await h.estimate;
        expect(e).toMatchObject({ source: 'catalog', tables: ['jit_mybr_drop'], rows: Number(stats!.r), bytes: Number(stats!.b) });
        // InnoDB's TABLE_ROWS is itself an estimate.
        expect(e!.rows).toBeGreaterThanOrEqual(3000 * 0.5);
        expect(e!.rows).toBeLessThanOrEqual(3000 * 1.5);
        expect(e!.text).toMatch(/^≈ [\d,]+ rows of jit_mybr_drop \(\d+ kB\)$/);
        await decide((await h.request).id, false);
        expect((await h.result).ok).toBe(false);
      }
      expect(await count('jit_mybr_drop')).toBe(3000);
    } finally {
      c.destroy(); // a statement still held (a failed assertion) would keep end() waiting
    }
  });

  it('in an open transaction: estimated within it, and the transaction goes on and commits', async () => {
    const c = await t.connect(await t.token());
    try {
      await c.query('BEGIN');
      await c.query('INSERT INTO jit_myf_t VALUES (1)');
      const h = hold(c, 'UPDATE jit_mybr_big SET pad = NULL WHERE id > 9900');
      const e = await h.estimate;
      expect(e).toMatchObject({ source: 'explain', tables: ['jit_mybr_big'] });
      expect(e!.rows).toBeGreaterThanOrEqual(80);
      expect(e!.rows).toBeLessThanOrEqual(120);
      await decide((await h.request).id, true);
      const r = await h.result;
      expect(r.ok && r.r.affectedRows).toBe(100);
      await c.query('INSERT INTO jit_myf_t VALUES (2)');
      await c.query('COMMIT');
      expect(await count('jit_myf_t')).toBe(2);
      expect(await count('jit_mybr_big WHERE pad IS NULL')).toBe(100);
    } finally {
      c.destroy(); // a statement still held (a failed assertion) would keep end() waiting
    }
  });
});
