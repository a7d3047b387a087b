import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AmbiguousSessionIdError, newSessionId, openStore, type NewSession, type NewStatement, type Store } from '../../broker/store/index.js';
import { MAX_BATCH, openSqliteStore, SQLITE_MIGRATIONS } from '../../broker/store/sqlite.js';
import { dialects } from './dialects.js';

// The store contract, run against both dialects (SQLite in a temp folder, PostgreSQL in a database of its own);
// below them, what only the SQLite store has (read-only files, the busy timeout, its migrations folder).

let dir: string;
const open: Store[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'jit-store-'));
});
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A SQLite store in this test's folder (the SQLite-only tests). */
async function sqliteStoreAt(file = 'broker.db'): Promise<Store> {
  const s = await openStore(`sqlite:${join(dir, file)}`);
  open.push(s);
  return s;
}

function session(over: { build?: string | null; subject?: string; target?: string; at?: number } = {}): NewSession {
  return {
    target: over.target ?? 'prod',
    engine: 'postgres',
    identity: {
      subject: over.subject ?? 'repo:acme/api:ref:main',
      issuer: 'https://token.actions.githubusercontent.com',
      build: over.build === undefined ? 'build-1' : over.build,
      claims: { repository: 'acme/api', run_id: 42 },
      actors: ['agent:fixer'],
      tokenId: 'jti-1',
      expiresAt: new Date(2_000_000_000_000),
    },
    client: { address: '10.0.0.7', port: 50432, application: 'psql', user: 'app', tls: true },
    startedAt: new Date(over.at ?? 1_700_000_000_000),
  };
}

function stmt(sessionId: string, decision: NewStatement['decision'] = 'allow', sql = 'SELECT 1'): NewStatement {
  return {
    sessionId,
    sql,
    protocol: 'simple',
    kinds: ['read'],
    decision,
    ruleId: decision === 'allow' ? 'readers' : null,
    message: decision === 'allow' ? null : 'not allowed',
    startedAt: new Date(1_700_000_000_500),
  };
}

describe.each(dialects('contract'))('store ($name)', (d) => {
  let url: string;
  const opened: Store[] = [];
  beforeAll(() => d.setup());
  afterAll(() => d.teardown());
  beforeEach(async () => {
    url = await d.fresh();
  });
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
  });

  /** The test's store (opened again: the same store, as another process would open it). */
  async function storeAt(): Promise<Store> {
    const s = await openStore(url);
    opened.push(s);
    return s;
  }

  describe('sessions', () => {
    it('creates, gets (by id and unique prefix), lists and ends a session', async () => {
      const store = await storeAt();
      const id = await store.createSession(session());
      expect(id).toMatch(/^s_[0-9a-hjkmnp-tv-z]{16}$/);

      const got = await store.getSession(id);
      expect(got).toMatchObject({
        id,
        target: 'prod',
        engine: 'postgres',
        subject: 'repo:acme/api:ref:main',
        build: 'build-1',
        claims: { repository: 'acme/api', run_id: 42 },
        actors: ['agent:fixer'],
        tokenId: 'jti-1',
        clientAddress: '10.0.0.7',
        clientPort: 50432,
        clientApplication: 'psql',
        dbUser: 'app',
        tls: true,
        endedAt: null,
        endReason: null,
        statementCount: 0,
        allowed: 0,
        denied: 0,
        reviewed: 0,
      });
      expect(got?.startedAt).toEqual(new Date(1_700_000_000_000));
      expect((await store.getSession(id.slice(0, 8)))?.id).toBe(id);
      expect((await store.getSession(id.slice(2, 9).toUpperCase()))?.id).toBe(id); // no `s_`, any case
      expect(await store.getSession('s_u')).toBeNull(); // `u` is not in the id alphabet
      expect(await store.getSession('  ')).toBeNull();
      expect(await store.listSessions({})).toHaveLength(1);

      await store.endSession(id, 'client disconnected', new Date(1_700_000_001_000));
      await store.endSession(id, 'broker shutdown', new Date(1_700_000_009_000)); // first end wins
      const ended = await store.getSession(id);
      expect(ended?.endedAt).toEqual(new Date(1_700_000_001_000));
      expect(ended?.endReason).toBe('client disconnected');
      await expect(store.endSession('s_nosuchsession00', 'x')).resolves.toBeUndefined();
    });

    it('refuses an ambiguous prefix with a clear error', async () => {
      const store = await storeAt();
      await store.createSession(session());
      await store.createSession(session());
      await expect(store.getSession('s_')).rejects.toBeInstanceOf(AmbiguousSessionIdError);
      await expect(store.getSession('s_')).rejects.toThrow(/ambiguous/);
    });

    it('lists newest first, filters by build/subject/target/open, and limits', async () => {
      const store = await storeAt();
      const a = await store.createSession(session({ build: 'b-1', at: 1000 }));
      const b = await store.createSession(session({ build: 'b-2', at: 3000, subject: 'other' }));
      const c = await store.createSession(session({ build: 'b-1', at: 2000, target: 'staging' }));
      const d = await store.createSession(session({ build: null, at: 3000 })); // same ms as b: later insert first
      await store.endSession(c, 'done');

      const ids = async (f: Parameters<Store['listSessions']>[0]) => (await store.listSessions(f)).map((s) => s.id);
      expect(await ids({})).toEqual([d, b, c, a]);
      expect(await ids({ build: 'b-1' })).toEqual([c, a]);
      expect(await ids({ subject: 'other' })).toEqual([b]);
      expect(await ids({ target: 'staging' })).toEqual([c]);
      expect(await ids({ open: true })).toEqual([d, b, a]);
      expect(await ids({ open: false })).toEqual([c]);
      expect(await ids({ limit: 2 })).toEqual([d, b]);
      expect(await ids({ build: 'b-1', open: true, limit: 5 })).toEqual([a]);
      expect(await ids({ build: 'nope' })).toEqual([]);
    });

    it('ends the sessions a crash left open', async () => {
      const store = await storeAt();
      const a = await store.createSession(session());
      const b = await store.createSession(session());
      await store.endSession(a, 'client disconnected');
      expect(await store.endOpenSessions('broker restarted')).toBe(1);
      expect(await store.endOpenSessions('broker restarted')).toBe(0);
      expect((await store.getSession(a))?.endReason).toBe('client disconnected');
      expect((await store.getSession(b))?.endReason).toBe('broker restarted');
      expect((await store.getSession(b))?.endedAt).toBeInstanceOf(Date);
    });
  });

  describe('statements', () => {
    it('numbers statements per session and counts decisions', async () => {
      const store = await storeAt();
      const s1 = await store.createSession(session());
      const s2 = await store.createSession(session());
      const ids = [
        await store.recordStatement(stmt(s1, 'allow', 'SELECT 1')),
        await store.recordStatement(stmt(s2, 'deny', 'DROP TABLE t')),
        await store.recordStatement(stmt(s1, 'review', 'DELETE FROM t')),
        await store.recordStatement(stmt(s1, 'allow', 'SELECT 2')),
      ];
      expect(new Set(ids).size).toBe(4);

      const list1 = await store.listStatements(s1);
      expect(list1.map((r) => [r.seq, r.sql, r.decision])).toEqual([
        [1, 'SELECT 1', 'allow'],
        [2, 'DELETE FROM t', 'review'],
        [3, 'SELECT 2', 'allow'],
      ]);
      expect(list1[0]).toMatchObject({
        id: ids[0],
        sessionId: s1,
        protocol: 'simple',
        kinds: ['read'],
        ruleId: 'readers',
        message: null,
        startedAt: new Date(1_700_000_000_500),
        durationMs: null,
        tag: null,
        rows: null,
        error: null,
      });
      expect((await store.listStatements(s2)).map((r) => r.seq)).toEqual([1]);

      expect(await store.getSession(s1)).toMatchObject({ statementCount: 3, allowed: 2, denied: 0, reviewed: 1 });
      const [second] = await store.listSessions({ limit: 1 });
      expect(second).toMatchObject({ id: s2, statementCount: 1, allowed: 0, denied: 1, reviewed: 0 });
    });

    it('records the outcome of a statement', async () => {
      const store = await storeAt();
      const s = await store.createSession(session());
      const ok = await store.recordStatement(stmt(s));
      const bad = await store.recordStatement(stmt(s));
      await store.completeStatement(ok, { durationMs: 1.25, tag: 'SELECT 3', rows: 3, error: null });
      await store.completeStatement(bad, { durationMs: 0.5, tag: null, rows: null, error: 'relation "t" does not exist' });
      const [r1, r2] = await store.listStatements(s);
      expect(r1).toMatchObject({ durationMs: 1.25, tag: 'SELECT 3', rows: 3, error: null });
      expect(r2).toMatchObject({ durationMs: 0.5, tag: null, rows: null, error: 'relation "t" does not exist' });
      await expect(store.completeStatement(999_999, { durationMs: 1, tag: null, rows: null, error: null })).rejects.toThrow(/unknown statement/);
    });

    it('has committed the record when recordStatement resolves', async () => {
      const store = await storeAt();
      const s = await store.createSession(session());
      const id = await store.recordStatement(stmt(s, 'allow', 'SELECT durable'));
      expect((await d.peek<{ sql: string }>(`SELECT sql FROM statements WHERE id = ${id}`)).sql).toBe('SELECT durable');
    });
  });

  describe('write-ahead failures leave nothing half-written', () => {
    async function expectUntouched(store: Store, sessionId: string, count: number) {
      expect((await store.getSession(sessionId))?.statementCount).toBe(count);
      expect(await store.listStatements(sessionId)).toHaveLength(count);
    }

    it('rejects a statement for an unknown session', async () => {
      const store = await storeAt();
      await expect(store.recordStatement(stmt('s_nosuchsession00'))).rejects.toThrow(/unknown session/);
    });

    it('rolls the seq back when the insert fails after the count was bumped', async () => {
      const store = await storeAt();
      const s = await store.createSession(session());
      await store.recordStatement(stmt(s));
      const undo = await d.failInsertsOf('SELECT 1');
      await expect(store.recordStatement(stmt(s))).rejects.toThrow(/disk full/);
      await expectUntouched(store, s, 1);
      await undo();
      await store.recordStatement(stmt(s));
      expect((await store.listStatements(s)).map((r) => r.seq)).toEqual([1, 2]);
    });

    it('rejects once the store is closed, and the store is intact on re-open', async () => {
      const store = await openStore(url);
      const s = await store.createSession(session());
      await store.recordStatement(stmt(s));
      await store.close();
      await store.close(); // idempotent
      await expect(store.recordStatement(stmt(s))).rejects.toThrow();
      await expect(store.ping()).rejects.toThrow();
      const again = await storeAt();
      await expectUntouched(again, s, 1);
    });
  });

  describe('group commit', () => {
    /** Both dialects' stores count their batch transactions. */
    const commits = (s: Store) => (s as Store & { commits: number }).commits;
    const OUTCOME = { durationMs: 2.5, tag: 'SELECT 1', rows: 1, error: null };

    /** Settles-before check: true once p has settled, either way. */
    function tracked<T>(p: Promise<T>): { p: Promise<T>; settled: () => boolean } {
      let done = false;
      p.then(
        () => (done = true),
        () => (done = true),
      );
      return { p, settled: () => done };
    }

    it('commits concurrent records in one transaction: distinct ids, seq in call order, right counts', async () => {
      const store = await storeAt();
      const ss = [await store.createSession(session()), await store.createSession(session()), await store.createSession(session())];
      // Uneven interleaving: session 0 gets every 5th call, the rest alternate between 1 and 2.
      const calls = Array.from({ length: 200 }, (_, i) => ({ sessionId: ss[i % 5 === 0 ? 0 : 1 + (i % 2)]!, sql: `SELECT ${i}` }));
      const before = commits(store);
      const ids = await Promise.all(calls.map((c) => store.recordStatement(stmt(c.sessionId, 'allow', c.sql))));
      expect(commits(store) - before).toBe(1);
      expect(new Set(ids).size).toBe(200);

      for (const sid of ss) {
        const mine = calls.filter((c) => c.sessionId === sid);
        const rows = await store.listStatements(sid);
        expect(rows.map((r) => r.seq)).toEqual(mine.map((_, i) => i + 1));
        expect(rows.map((r) => r.sql)).toEqual(mine.map((c) => c.sql)); // seq follows call order
        expect(rows.map((r) => r.id)).toEqual(calls.flatMap((c, i) => (c.sessionId === sid ? [ids[i]] : [])));
        expect(await store.getSession(sid)).toMatchObject({ statementCount: mine.length, allowed: mine.length });
      }
      const listed = await store.listSessions({});
      expect(listed.map((x) => x.statementCount).sort((a, b) => a - b)).toEqual([40, 80, 80]);
    });

    it('a failing batch rejects every call in it and writes nothing of it', async () => {
      const store = await storeAt();
      const a = await store.createSession(session());
      const b = await store.createSession(session());
      const earlier = await store.recordStatement(stmt(a, 'allow', 'SELECT 0'));
      // Only one statement of the next batch fails, late in it; the whole batch must go.
      const undo = await d.failInsertsOf('boom');
      const before = commits(store);
      const results = await Promise.allSettled([
        store.recordStatement(stmt(a, 'allow', 'SELECT 1')),
        store.completeStatement(earlier, OUTCOME),
        store.recordStatement(stmt(b, 'deny', 'SELECT 2')),
        store.recordStatement(stmt(a, 'allow', 'boom')),
        store.recordStatement(stmt(b, 'allow', 'SELECT 3')),
      ]);
      for (const r of results) {
        expect(r.status).toBe('rejected');
        expect(String((r as PromiseRejectedResult).reason)).toMatch(/disk full/);
      }
      expect(commits(store)).toBe(before);
      expect((await store.listStatements(a)).map((r) => [r.seq, r.sql, r.durationMs])).toEqual([[1, 'SELECT 0', null]]);
      expect(await store.listStatements(b)).toEqual([]);
      expect(await store.getSession(a)).toMatchObject({ statementCount: 1, allowed: 1 });
      expect(await store.getSession(b)).toMatchObject({ statementCount: 0, denied: 0 });
      expect(Number((await d.peek<{ n: number }>('SELECT count(*) AS n FROM statements')).n)).toBe(1);

      await undo();
      await Promise.all([store.recordStatement(stmt(a)), store.recordStatement(stmt(b))]);
      expect((await store.listStatements(a)).map((r) => r.seq)).toEqual([1, 2]); // the failed batch's seqs were not used up
      expect((await store.listStatements(b)).map((r) => r.seq)).toEqual([1]);
    });

    it('an unknown session fails only its own record, not the rest of the batch', async () => {
      const store = await storeAt();
      const s = await store.createSession(session());
      const [r1, bad, r2] = await Promise.allSettled([
        store.recordStatement(stmt(s, 'allow', 'SELECT 1')),
        store.recordStatement(stmt('s_nosuchsession00')),
        store.recordStatement(stmt(s, 'allow', 'SELECT 2')),
      ]);
      expect(r1.status).toBe('fulfilled');
      expect(r2.status).toBe('fulfilled');
      expect(bad.status).toBe('rejected');
      expect(String((bad as PromiseRejectedResult).reason)).toMatch(/unknown session s_nosuchsession00/);
      expect((await store.listStatements(s)).map((r) => [r.seq, r.sql])).toEqual([
        [1, 'SELECT 1'],
        [2, 'SELECT 2'],
      ]);
    });

    it('folds completes into the batches of records, and they land', async () => {
      const store = await storeAt();
      const s = await store.createSession(session());
      const t = await store.createSession(session());
      const [q1, q2] = await Promise.all([store.recordStatement(stmt(s, 'allow', 'q1')), store.recordStatement(stmt(t, 'allow', 'q2'))]);
      const before = commits(store);
      const [c1, r3, c2, r4, unknown] = await Promise.allSettled([
        store.completeStatement(q1!, { durationMs: 1.5, tag: 'SELECT 3', rows: 3, error: null }),
        store.recordStatement(stmt(s, 'allow', 'q3')),
        store.completeStatement(q2!, { durationMs: 0.5, tag: null, rows: null, error: 'relation "t" does not exist' }),
        store.recordStatement(stmt(t, 'allow', 'q4')),
        store.completeStatement(999_999, OUTCOME),
      ]);
      expect(commits(store) - before).toBe(1); // two records and three completes: one commit
      expect([c1.status, r3.status, c2.status, r4.status]).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
      expect(unknown.status).toBe('rejected'); // fails alone
      expect(String((unknown as PromiseRejectedResult).reason)).toMatch(/unknown statement 999999/);

      // The pgbench shape: each client awaits its record, then its complete, in a loop.
      const client = async (sid: string) => {
        for (let i = 0; i < 20; i++) {
          const id = await store.recordStatement(stmt(sid, 'allow', `loop ${i}`));
          await store.completeStatement(id, { durationMs: i, tag: `SELECT ${i}`, rows: i, error: null });
        }
      };
      await Promise.all([client(s), client(t)]);
      // A complete nobody awaits (BrokerSession.complete) is still seen by the next read.
      const last = await store.recordStatement(stmt(s, 'allow', 'last'));
      void store.completeStatement(last, OUTCOME);

      const rows = await store.listStatements(s);
      expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 23 }, (_, i) => i + 1));
      expect(rows[0]).toMatchObject({ sql: 'q1', durationMs: 1.5, tag: 'SELECT 3', rows: 3, error: null });
      expect(rows[1]).toMatchObject({ sql: 'q3', durationMs: null });
      expect(rows.slice(2, 22).map((r) => [r.sql, r.durationMs, r.tag])).toEqual(Array.from({ length: 20 }, (_, i) => [`loop ${i}`, i, `SELECT ${i}`]));
      expect(rows[22]).toMatchObject({ sql: 'last', durationMs: 2.5 });
      expect((await store.listStatements(t))[0]).toMatchObject({ sql: 'q2', error: 'relation "t" does not exist', durationMs: 0.5 });
      expect(commits(store) - before).toBeLessThan(1 + 20 * 2 * 2); // the two clients shared commits
    });

    it('close() writes what is queued before it closes', async () => {
      const store = await openStore(url);
      const s = await store.createSession(session());
      const first = await store.recordStatement(stmt(s, 'allow', 'SELECT 0'));
      const pending = [
        tracked(store.recordStatement(stmt(s, 'allow', 'SELECT 1'))),
        tracked(store.completeStatement(first, OUTCOME)),
        tracked(store.recordStatement(stmt(s, 'allow', 'SELECT 2'))),
      ];
      await store.close();
      expect(pending.map((x) => x.settled())).toEqual([true, true, true]);
      await Promise.all(pending.map((x) => x.p));
      await expect(store.recordStatement(stmt(s))).rejects.toThrow(/closed/);
      await expect(store.completeStatement(first, OUTCOME)).rejects.toThrow(/closed/);

      expect(Number((await d.peek<{ n: number }>('SELECT count(*) AS n FROM statements')).n)).toBe(3);
      expect((await d.peek<{ d: number }>(`SELECT duration_ms AS d FROM statements WHERE id = ${first}`)).d).toBe(2.5);
    });

    it('endSession lands the session’s queued records before it ends the session', async () => {
      const store = await storeAt();
      const s = await store.createSession(session());
      const queued = [tracked(store.recordStatement(stmt(s, 'allow', 'a'))), tracked(store.recordStatement(stmt(s, 'allow', 'b')))];
      await store.endSession(s, 'client disconnected');
      expect(queued.map((x) => x.settled())).toEqual([true, true]);
      await Promise.all(queued.map((x) => x.p));
      expect(Number((await d.peek<{ n: number }>(`SELECT count(*) AS n FROM statements WHERE session_id = '${s}'`)).n)).toBe(2);
      expect(await store.getSession(s)).toMatchObject({ statementCount: 2, endReason: 'client disconnected' });
      // Should a statement still be recorded after the end, it numbers on from the stored MAX(seq).
      await store.recordStatement(stmt(s, 'allow', 'c'));
      expect((await store.listStatements(s)).map((r) => [r.seq, r.sql])).toEqual([
        [1, 'a'],
        [2, 'b'],
        [3, 'c'],
      ]);
    });

    it('continues seq numbering (and ids) after re-opening the store', async () => {
      const first = await storeAt();
      const s = await first.createSession(session());
      const t = await first.createSession(session());
      const ids1 = await Promise.all([first.recordStatement(stmt(s)), first.recordStatement(stmt(t)), first.recordStatement(stmt(s))]);
      await first.close();
      const again = await storeAt();
      const ids2 = await Promise.all([again.recordStatement(stmt(s)), again.recordStatement(stmt(t)), again.recordStatement(stmt(s))]);
      expect(Math.min(...ids2)).toBeGreaterThan(Math.max(...ids1));
      expect((await again.listStatements(s)).map((r) => r.seq)).toEqual([1, 2, 3, 4]);
      expect((await again.listStatements(t)).map((r) => r.seq)).toEqual([1, 2]);
      expect(await again.getSession(s)).toMatchObject({ statementCount: 4 });
    });

    it(`bounds a batch at ${MAX_BATCH} calls`, async () => {
      const store = await storeAt();
      const s = await store.createSession(session());
      const n = MAX_BATCH * 2 + 500;
      const before = commits(store);
      const ids = await Promise.all(Array.from({ length: n }, (_, i) => store.recordStatement(stmt(s, 'allow', `SELECT ${i}`))));
      expect(commits(store) - before).toBe(3);
      expect(new Set(ids).size).toBe(n);
      const rows = await store.listStatements(s);
      expect(rows.every((r, i) => r.seq === i + 1 && r.sql === `SELECT ${i}`)).toBe(true);
      expect((await store.getSession(s))?.statementCount).toBe(n);
    });
  });
});

/** A second, independent connection to a SQLite file of this test's folder: what another process would see. */
function peek<T>(file: string, q: string): T {
  const db = new Database(join(dir, file), { readonly: true });
  try {
    return db.prepare(q).get() as T; // test helper: the caller names the row shape
  } finally {
    db.close();
  }
}

describe('store (sqlite only): write-ahead failures', () => {
  async function expectUntouched(store: Store, sessionId: string, count: number) {
    expect((await store.getSession(sessionId))?.statementCount).toBe(count);
    expect(await store.listStatements(sessionId)).toHaveLength(count);
  }
  it('rejects while the database is read-only, then carries on at the right seq', async () => {
    const store = await openSqliteStore(join(dir, 'ro.db'));
    open.push(store);
    const s = await store.createSession(session());
    await store.recordStatement(stmt(s));
    store.client.pragma('query_only = ON');
    await expect(store.recordStatement(stmt(s))).rejects.toThrow(/readonly/i);
    store.client.pragma('query_only = OFF');
    await expectUntouched(store, s, 1);
    await store.recordStatement(stmt(s));
    expect((await store.listStatements(s)).map((r) => r.seq)).toEqual([1, 2]);
  });

  it('rejects when another writer holds the lock past the busy timeout', async () => {
    const store = await openSqliteStore(join(dir, 'busy.db'), { busyTimeoutMs: 50 });
    open.push(store);
    const s = await store.createSession(session());
    const other = new Database(join(dir, 'busy.db'));
    other.exec('BEGIN IMMEDIATE');
    await expect(store.recordStatement(stmt(s))).rejects.toThrow(/locked|busy/i);
    other.exec('ROLLBACK');
    other.close();
    await expectUntouched(store, s, 0);
  });
});

describe('store (sqlite only): opening', () => {
  it('applies migrations to a fresh file (creating its folder); re-opening is a no-op', async () => {
    const file = join('nested', 'deeper', 'fresh.db');
    const store = await sqliteStoreAt(file);
    await store.ping();
    const s = await store.createSession(session());
    await store.close();
    const migrated = () => peek<{ n: number }>(file, 'SELECT count(*) AS n FROM __drizzle_migrations').n;
    expect(migrated()).toBeGreaterThanOrEqual(1);
    const before = migrated();
    const again = await openStore(`sqlite://${join(dir, file)}`); // sqlite:///abs/path form
    open.push(again);
    expect(migrated()).toBe(before);
    expect((await again.getSession(s))?.id).toBe(s);
    expect(peek<{ journal_mode: string }>(file, 'PRAGMA journal_mode').journal_mode).toBe('wal');
  });

  it('upgrades a store made by the first migration, keeping its sessions, statements, ids and seqs', async () => {
    // The store as 0000_init left it: only the first migration in the journal.
    const old = join(dir, 'migrations-0000');
    mkdirSync(join(old, 'meta'), { recursive: true });
    const journal = JSON.parse(readFileSync(join(SQLITE_MIGRATIONS, 'meta', '_journal.json'), 'utf8')) as {
      entries: { tag: string; when: number }[];
    };
    const init = journal.entries.find((e) => e.tag === '0000_init');
    expect(init).toBeDefined();
    // drizzle applies the migrations stamped later than the last one applied: later ones must be.
    for (const e of journal.entries) if (e !== init) expect(e.when).toBeGreaterThan(init!.when);
    writeFileSync(join(old, 'meta', '_journal.json'), JSON.stringify({ ...journal, entries: [init] }));
    writeFileSync(join(old, '0000_init.sql'), readFileSync(join(SQLITE_MIGRATIONS, '0000_init.sql')));
    const file = join(dir, 'old.db');
    const raw = new Database(file);
    raw.pragma('journal_mode = WAL');
    migrate(drizzle({ client: raw }), { migrationsFolder: old });
    raw.exec(`
      INSERT INTO sessions (id, target, engine, subject, issuer, claims, actors, client_address, client_port, tls, started_at, statement_count)
        VALUES ('s_0ldsess1on00000', 'prod', 'postgres', 'sub', 'iss', '{}', '[]', '10.0.0.1', 5432, 1, 1700000000000, 2);
      INSERT INTO statements (id, session_id, seq, sql, protocol, kinds, decision, started_at, duration_ms, tag)
        VALUES (5, 's_0ldsess1on00000', 1, 'SELECT 1', 'simple', '["read"]', 'allow', 1700000000100, 1.5, 'SELECT 1'),
               (9, 's_0ldsess1on00000', 2, 'DROP TABLE t', 'simple', '["ddl"]', 'deny', 1700000000200, NULL, NULL);
    `);
    raw.close();

    const store = await sqliteStoreAt('old.db');
    expect(await store.getSession('s_0ldsess1on00000')).toMatchObject({ statementCount: 2, allowed: 1, denied: 1 });
    expect((await store.listStatements('s_0ldsess1on00000')).map((r) => [r.id, r.seq, r.sql, r.durationMs])).toEqual([
      [5, 1, 'SELECT 1', 1.5],
      [9, 2, 'DROP TABLE t', null],
    ]);
    const id = await store.recordStatement(stmt('s_0ldsess1on00000'));
    expect(id).toBe(10);
    expect((await store.listStatements('s_0ldsess1on00000')).map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(peek<{ n: number }>('old.db', 'SELECT count(*) AS n FROM __drizzle_migrations').n).toBe(journal.entries.length);
    expect(peek<{ sql: string }>('old.db', `SELECT sql FROM sqlite_master WHERE name = 'statements'`).sql).not.toMatch(/AUTOINCREMENT/i);
    expect(peek<{ n: number }>('old.db', `SELECT count(*) AS n FROM pragma_index_list('statements') WHERE name = 'statements_session_seq_idx'`).n).toBe(1);
    // session_id → sessions, and (since 0002) approval_id → approvals.
    expect(peek<{ n: number }>('old.db', `SELECT count(*) AS n FROM pragma_foreign_key_list('statements')`).n).toBe(2);
    expect(peek<{ n: number }>('old.db', `SELECT count(*) AS n FROM pragma_table_info('sessions') WHERE name = 'statement_count'`).n).toBe(0);
  });

  it('opens an in-memory store', async () => {
    const store = await openStore('sqlite::memory:');
    open.push(store);
    const s = await store.createSession(session());
    await store.recordStatement(stmt(s));
    expect((await store.getSession(s))?.statementCount).toBe(1);
  });

  it('refuses an unknown scheme or an empty path clearly', async () => {
    await expect(openStore('mysql://db/jit')).rejects.toThrow(/unsupported URL scheme "mysql:"/);
    await expect(openStore('sqlite:')).rejects.toThrow(/names no file/);
  });

  it('makes short random ids', () => {
    const ids = new Set(Array.from({ length: 1000 }, newSessionId));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^s_[0-9a-hjkmnp-tv-z]{16}$/);
  });
});
