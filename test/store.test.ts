import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AmbiguousSessionIdError,
  newSessionId,
  openStore,
  type NewSession,
  type NewStatement,
  type Store,
} from '../broker/store/index.js';
import { openSqliteStore } from '../broker/store/sqlite.js';

let dir: string;
const open: Store[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'jit-store-'));
});
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

async function storeAt(file = 'broker.db'): Promise<Store> {
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

/** A second, independent connection to the same file: what another process would see. */
function peek<T>(file: string, q: string): T {
  const db = new Database(join(dir, file), { readonly: true });
  try {
    return db.prepare(q).get() as T; // test helper: the caller names the row shape
  } finally {
    db.close();
  }
}

describe('store: sessions', () => {
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

describe('store: statements', () => {
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
    await expect(store.completeStatement(999_999, { durationMs: 1, tag: null, rows: null, error: null })).rejects.toThrow(
      /unknown statement/,
    );
  });

  it('has committed the record when recordStatement resolves', async () => {
    const store = await storeAt();
    const s = await store.createSession(session());
    const id = await store.recordStatement(stmt(s, 'allow', 'SELECT durable'));
    expect(peek<{ sql: string }>('broker.db', `SELECT sql FROM statements WHERE id = ${id}`).sql).toBe('SELECT durable');
  });
});

describe('store: write-ahead failures leave nothing half-written', () => {
  async function expectUntouched(store: Store, sessionId: string, count: number) {
    expect((await store.getSession(sessionId))?.statementCount).toBe(count);
    expect(await store.listStatements(sessionId)).toHaveLength(count);
  }

  it('rejects a statement for an unknown session', async () => {
    const store = await storeAt();
    await expect(store.recordStatement(stmt('s_nosuchsession00'))).rejects.toThrow(/unknown session/);
  });

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

  it('rolls the seq back when the insert fails after the count was bumped', async () => {
    const store = await storeAt('trigger.db');
    const s = await store.createSession(session());
    await store.recordStatement(stmt(s));
    const other = new Database(join(dir, 'trigger.db'));
    other.exec(`CREATE TRIGGER fail_insert BEFORE INSERT ON statements BEGIN SELECT RAISE(ABORT, 'disk full'); END`);
    await expect(store.recordStatement(stmt(s))).rejects.toThrow(/disk full/);
    await expectUntouched(store, s, 1);
    other.exec('DROP TRIGGER fail_insert');
    other.close();
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

  it('rejects once the store is closed, and the file is intact on re-open', async () => {
    const store = await openStore(`sqlite:${join(dir, 'closed.db')}`);
    const s = await store.createSession(session());
    await store.recordStatement(stmt(s));
    await store.close();
    await store.close(); // idempotent
    await expect(store.recordStatement(stmt(s))).rejects.toThrow();
    await expect(store.ping()).rejects.toThrow();
    const again = await storeAt('closed.db');
    await expectUntouched(again, s, 1);
  });
});

describe('store: opening', () => {
  it('applies migrations to a fresh file (creating its folder); re-opening is a no-op', async () => {
    const file = join('nested', 'deeper', 'fresh.db');
    const store = await storeAt(file);
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

  it('opens an in-memory store', async () => {
    const store = await openStore('sqlite::memory:');
    open.push(store);
    const s = await store.createSession(session());
    await store.recordStatement(stmt(s));
    expect((await store.getSession(s))?.statementCount).toBe(1);
  });

  it('says clearly that PostgreSQL is not supported yet, without echoing the password', async () => {
    const err = await openStore('postgres://broker:s3cret@db:5432/jit').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/PostgreSQL is not supported until/);
    expect((err as Error).message).not.toContain('s3cret');
    await expect(openStore('postgresql://db/jit')).rejects.toThrow(/not supported until/);
    await expect(openStore('mysql://db/jit')).rejects.toThrow(/unsupported URL scheme "mysql:"/);
    await expect(openStore('sqlite:')).rejects.toThrow(/names no file/);
  });

  it('makes short random ids', () => {
    const ids = new Set(Array.from({ length: 1000 }, newSessionId));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^s_[0-9a-hjkmnp-tv-z]{16}$/);
  });
});
