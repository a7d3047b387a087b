// What only the PostgreSQL store has to get right: several replicas opening (and migrating) one database at
// once, single-use token claims and statement id blocks raced from two stores, a prefix lookup under a
// collation that is not byte order, an event PostgreSQL refuses (a NUL byte) skipped alone, and errors that
// never echo the URL's password.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type JournalEvent, type Store } from '../../broker/store/index.js';
import { MIGRATION_LOCK, PG_MIGRATIONS } from '../../broker/store/pg.js';
import { eventually } from '../support/broker.js';
import { dropPgDatabase, own, pgUrl, withPg } from './dialects.js';
import { UPSTREAM } from '../support/broker.js';

const DB = own('jit_store_pg');
const url = pgUrl(DB);
const opened: Store[] = [];

/** A fresh database, with an ICU collation: ids do not sort in byte order there unless asked to. */
async function freshDatabase() {
  await withPg(UPSTREAM, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${DB} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`);
  });
}

async function store(): Promise<Store> {
  const s = await openStore(url);
  opened.push(s);
  return s;
}

beforeAll(freshDatabase);
beforeEach(freshDatabase);
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
});
afterAll(() => dropPgDatabase(DB));

const migrations = (JSON.parse(readFileSync(join(PG_MIGRATIONS, 'meta', '_journal.json'), 'utf8')) as { entries: { tag: string }[] }).entries;

describe('store (postgres): opening', () => {
  it('four replicas opening a fresh database at once all succeed, and the schema is applied once', async () => {
    const stores = await Promise.all([1, 2, 3, 4].map(() => store()));
    for (const s of stores) await s.ping();
    const applied = await withPg(
      url,
      async (c) =>
        (await c.query<{ n: string; hashes: string }>('SELECT count(*) AS n, count(DISTINCT hash) AS hashes FROM drizzle.__drizzle_migrations')).rows[0]!,
    );
    expect(Number(applied.n)).toBe(migrations.length);
    expect(Number(applied.hashes)).toBe(migrations.length);
    // They share it: a session one writes, another reads.
    const id = await stores[0]!.createSession({
      target: 'prod',
      engine: 'postgres',
      identity: { subject: 'ci', issuer: 'iss', build: null, claims: {}, actors: [], tokenId: null, expiresAt: new Date() },
      client: { address: '10.0.0.1', port: 1, application: null, user: null, tls: false },
      startedAt: new Date(),
    });
    expect((await stores[3]!.getSession(id))?.id).toBe(id);
  });

  it('waits for the migration lock another replica holds, then opens', async () => {
    await (await store()).close(); // migrated already: the wait is for the lock, not the work
    opened.length = 0;
    await withPg(url, async (holder) => {
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK]);
      let done = false;
      const opening = store().then((s) => {
        done = true;
        return s;
      });
      // The opener is queued behind the lock (an ungranted advisory lock), and has not opened.
      await eventually(async () => {
        const { rows } = await holder.query<{ n: string }>(`SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`);
        return Number(rows[0]!.n) === 1;
      });
      expect(done).toBe(false);
      await holder.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK]);
      await (await opening).ping();
    });
  });

  it('says where it could not connect, never the password', async () => {
    const missing = await openStore(`postgres://postgres:s3cret@127.0.0.1:5432/jit_store_no_such_db`).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(Error);
    expect((missing as Error).message).toMatch(/127\.0\.0\.1:5432\/jit_store_no_such_db.*does not exist/);
    expect((missing as Error).message).not.toContain('s3cret');
    const refused = await openStore(`postgresql://broker:s3cret@127.0.0.1:1/jit`).catch((e: unknown) => e);
    expect((refused as Error).message).toMatch(/cannot connect to the PostgreSQL store at 127\.0\.0\.1:1\/jit/);
    expect((refused as Error).message).not.toContain('s3cret');
  });
});

describe('store (postgres): replicas racing', () => {
  it('a token id raced from two stores is claimed exactly once', async () => {
    const [a, b] = [await store(), await store()];
    const jtis = Array.from({ length: 50 }, (_, i) => `jti-${i}`);
    const use = (jti: string) => ({ jti, issuer: 'iss', usedAt: new Date(), expiresAt: new Date(Date.now() + 60_000) });
    const results = await Promise.all(jtis.map((jti) => Promise.all([a.claimTokenUse(use(jti)), b.claimTokenUse(use(jti))])));
    for (const pair of results) expect(pair.filter(Boolean)).toHaveLength(1);
    expect(await a.claimTokenUse(use('jti-0'))).toBe(false);
  });

  it('statement id blocks reserved from two stores at once never overlap', async () => {
    const [a, b] = [await store(), await store()];
    const firsts = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).reserveStatementIds(100)));
    const sorted = [...firsts].sort((x, y) => x - y);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]!).toBeGreaterThanOrEqual(sorted[i - 1]! + 100);
  });
});

describe('store (postgres): reading and ingesting', () => {
  it('finds a session by a prefix of its id in a database with an ICU collation (not byte order)', async () => {
    const s = await store();
    const session = () =>
      s.createSession({
        target: 'prod',
        engine: 'postgres',
        identity: { subject: 'ci', issuer: 'iss', build: null, claims: {}, actors: [], tokenId: null, expiresAt: new Date() },
        client: { address: '10.0.0.1', port: 1, application: null, user: null, tls: false },
        startedAt: new Date(),
      });
    const ids = [await session(), await session(), await session()];
    for (const id of ids) expect((await s.getSession(id.slice(2, 10)))?.id).toBe(id);
    await expect(s.getSession('s_')).rejects.toThrow(/ambiguous/);
  });

  it('an event PostgreSQL refuses (a NUL byte in its text) is skipped and counted; the rest of the batch lands', async () => {
    const s = await store();
    const first = await s.reserveStatementIds(3);
    const sid = 's_nulbyte00000000';
    const ev = (id: number, seq: number, sql: string): JournalEvent => ({
      t: 'stmt',
      id,
      seq,
      sessionId: sid,
      sql,
      protocol: 'simple',
      kinds: ['read'],
      decision: 'allow',
      ruleId: null,
      message: null,
      startedAt: Date.now(),
      approvalId: null,
    });
    const open: JournalEvent = {
      t: 'open',
      id: sid,
      startedAt: Date.now(),
      target: 'prod',
      engine: 'mysql',
      subject: 'ci',
      issuer: 'iss',
      build: null,
      claims: {},
      actors: [],
      tokenId: null,
      clientAddress: '10.0.0.1',
      clientPort: 1,
      clientApplication: null,
      dbUser: null,
      tls: false,
    };
    const skipped = await s.ingest('j', [open, ev(first, 1, 'SELECT 1'), ev(first + 1, 2, 'SELECT "\u0000"'), ev(first + 2, 3, 'SELECT 3')], {
      segment: 1,
      offset: 9,
    });
    expect(skipped).toBe(1);
    expect((await s.listStatements(sid)).map((r) => r.sql)).toEqual(['SELECT 1', 'SELECT 3']);
    expect(await s.journalPosition('j')).toEqual({ segment: 1, offset: 9 });
  });
});
