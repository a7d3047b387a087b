// The journal and its indexer against a real SQLite store file: a restart resumes where the indexer
// stopped, a record torn by a crash is cut, segments rotate and go once indexed, reads see what was written.
import { mkdtempSync, readdirSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openJournal, type JournaledStore } from '../../../broker/audit/journal/index.js';
import { JournalWriter } from '../../../broker/audit/journal/writer.js';
import { journalId, listSegments } from '../../../broker/audit/journal/segments.js';
import { openSqliteStore, type SqliteStore } from '../../../broker/store/sqlite.js';
import type { JournalEvent } from '../../../broker/store/types.js';
import { eventually } from '../../support/broker.js';

const identity = { subject: 'ci:test', issuer: 'https://ci', build: 'b-1', claims: {}, actors: [], tokenId: 'j1', expiresAt: new Date(Date.now() + 60_000) };
const client = { address: '127.0.0.1', port: 5555, application: 'psql', user: 'ci', tls: true };

const dirs: string[] = [];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(): { dir: string; db: string; journal: string } {
  const dir = mkdtempSync(join(tmpdir(), 'jit-journal-'));
  dirs.push(dir);
  return { dir, db: join(dir, 'jit.db'), journal: join(dir, 'journal') };
}

async function store(path: string): Promise<SqliteStore> {
  const s = await openSqliteStore(path);
  closers.push(() => s.close());
  return s;
}

async function journal(
  s: SqliteStore,
  dir: string,
  o: { segmentBytes?: number; durability?: 'os' | 'fsync'; storeUrl?: string | null; log?: (msg: string, fields?: Record<string, unknown>) => void } = {},
): Promise<JournaledStore> {
  const j = await openJournal({
    dir,
    durability: o.durability ?? 'os',
    segmentBytes: o.segmentBytes ?? 16 * 1024 * 1024,
    store: s,
    storeUrl: o.storeUrl ?? null,
    log: o.log,
  });
  // The journaled store closes its store too; afterEach then finds it closed (close is idempotent).
  closers.push(() => j.close());
  return j;
}

const stmt = (sessionId: string, id: number, seq: number, sql: string): JournalEvent => ({
  t: 'stmt',
  id,
  sessionId,
  seq,
  sql,
  protocol: 'simple',
  kinds: ['write'],
  decision: 'allow',
  ruleId: 'rw',
  message: null,
  startedAt: 1_700_000_000_000 + seq,
  approvalId: null,
});
const open = (id: string): JournalEvent => ({
  t: 'open',
  id,
  target: 'app',
  engine: 'postgres',
  subject: 'ci:test',
  issuer: 'https://ci',
  build: 'b-1',
  claims: {},
  actors: [],
  tokenId: null,
  clientAddress: '127.0.0.1',
  clientPort: 1,
  clientApplication: 'psql',
  dbUser: 'ci',
  tls: true,
  startedAt: 1_700_000_000_000,
});

describe('the audit journal', () => {
  it('after a crash: indexes every whole record the last process wrote, cuts the torn one, and goes on in a new segment', async () => {
    const { db, journal: jdir } = setup();
    const s = await store(db);
    // What a broker killed in the middle of a write leaves: records never indexed, the last one cut short.
    const w = new JournalWriter({ dir: jdir, segment: 1, durability: 'os', segmentBytes: 1 << 20 });
    const written = [open('s_crashed'), stmt('s_crashed', 1, 1, 'INSERT INTO t VALUES (1)'), stmt('s_crashed', 2, 2, 'INSERT INTO t VALUES (2)')];
    for (const e of written) void w.append(e);
    await w.append({ t: 'done', id: 1, durationMs: 1, tag: 'INSERT 0 1', rows: 1, error: null, sample: null });
    const whole = w.position.offset;
    await w.append(stmt('s_crashed', 3, 3, 'INSERT INTO t VALUES (3)'));
    await w.close();
    const segment = join(jdir, '000000000001.jnl');
    const cut = statSync(segment).size - 5;
    truncateSync(segment, cut);

    const logged: [string, Record<string, unknown> | undefined][] = [];
    const j = await journal(s, jdir, { log: (msg, fields) => logged.push([msg, fields]) });
    // The torn record was cut off the file (which, indexed whole then, is gone now: segment 2 is the writer's).
    expect(logged).toContainEqual([expect.stringContaining('cut a torn record'), { segment: 1, offset: whole, bytes: cut - whole }]);
    const [session] = await j.listSessions({});
    expect(session).toMatchObject({ id: 's_crashed', endedAt: null, statementCount: 2 });
    const rows = await j.listStatements('s_crashed');
    expect(rows.map((r) => [r.seq, r.sql, r.tag])).toEqual([
      [1, 'INSERT INTO t VALUES (1)', 'INSERT 0 1'],
      [2, 'INSERT INTO t VALUES (2)', null],
    ]);
    expect(await j.endOpenSessions('the broker stopped while the session was open')).toBe(1);

    // The new process writes a new segment; ids continue above what the store holds.
    const id = await j.createSession({ target: 'app', engine: 'postgres', identity, client, startedAt: new Date() });
    const sid = await j.recordStatement({
      sessionId: id,
      sql: 'SELECT 1',
      protocol: 'simple',
      kinds: ['read'],
      decision: 'allow',
      ruleId: null,
      message: null,
      startedAt: new Date(),
    });
    expect(sid).toBeGreaterThan(2);
    await j.completeStatement(
      sid,
      { durationMs: 2, tag: 'SELECT 1', rows: 1, error: null },
      { columns: [{ name: 'x', type: 'int4' }], rows: [['1']], truncated: false, bytes: 1 },
    );
    await j.endSession(id, 'client closed');
    expect(j.writer.position.segment).toBe(2);
    expect(await j.getSession(id)).toMatchObject({ statementCount: 1, endReason: 'client closed' });
    expect(await j.listStatements(id)).toMatchObject([{ id: sid, seq: 1, sql: 'SELECT 1', tag: 'SELECT 1', rows: 1 }]);
    expect(await j.getSample(sid)).toEqual({ columns: [{ name: 'x', type: 'int4' }], rows: [['1']], truncated: false, bytes: 1 });
    expect(listSegments(jdir)).toEqual([2]); // segment 1 was indexed whole: removed
  });

  it('resumes where the store says it stopped: a restart applies nothing twice', async () => {
    const { db, journal: jdir } = setup();
    const s = await store(db);
    const first = await journal(s, jdir);
    const id = await first.createSession({ target: 'app', engine: 'postgres', identity, client, startedAt: new Date() });
    for (let i = 0; i < 5; i++)
      await first.recordStatement({
        sessionId: id,
        sql: `SELECT ${i}`,
        protocol: 'simple',
        kinds: ['read'],
        decision: 'allow',
        ruleId: null,
        message: null,
        startedAt: new Date(),
      });
    await first.synced();
    const jid = journalId(jdir);
    const before = await s.journalPosition(jid);
    // The same batch again (an indexer that crashed after its commit and before it knew): nothing changes.
    const rows = await s.listStatements(id);
    const again = rows.map((r) => stmt(id, r.id, r.seq, r.sql));
    expect(await s.ingest(jid, again, before!)).toBe(5);
    expect(await s.listStatements(id)).toEqual(rows);
    await first.close();

    const s2 = await store(db);
    const second = await journal(s2, jdir);
    expect(await second.listStatements(id)).toHaveLength(5);
    expect((await s2.journalPosition(jid))!.segment).toBeGreaterThan(before!.segment);
    // Another broker's journal on the same store keeps a position of its own.
    expect(await s2.journalPosition('j_other')).toBeNull();
  });

  it('rotates segments by size and removes each once it is in the store', async () => {
    const { db, journal: jdir } = setup();
    const s = await store(db);
    const j = await journal(s, jdir, { segmentBytes: 64 * 1024 });
    const id = await j.createSession({ target: 'app', engine: 'postgres', identity, client, startedAt: new Date() });
    const pad = 'x'.repeat(200);
    const ids: number[] = [];
    // 15 turns of 100 statements: each turn's records leave in one write, and a segment rotates after a write.
    for (let turn = 0; turn < 15; turn++) {
      const recorded: Promise<number>[] = [];
      for (let i = 0; i < 100; i++)
        recorded.push(
          j.recordStatement({
            sessionId: id,
            sql: `SELECT '${pad}', ${turn * 100 + i}`,
            protocol: 'simple',
            kinds: ['read'],
            decision: 'allow',
            ruleId: null,
            message: null,
            startedAt: new Date(),
          }),
        );
      ids.push(...(await Promise.all(recorded)));
    }
    expect(new Set(ids).size).toBe(1500);
    expect(j.writer.position.segment).toBeGreaterThan(3); // ~400 KB in 64 KB segments
    const rows = await j.listStatements(id);
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 1500 }, (_, i) => i + 1));
    expect(listSegments(jdir)).toEqual([j.writer.position.segment]);
    expect(readdirSync(jdir).filter((f) => f.endsWith('.jnl'))).toHaveLength(1);
  });

  it('with durability fsync, records the same way', async () => {
    const { db, journal: jdir } = setup();
    const s = await store(db);
    const j = await journal(s, jdir, { durability: 'fsync' });
    const id = await j.createSession({ target: 'app', engine: 'postgres', identity, client, startedAt: new Date() });
    const ids = await Promise.all(
      [1, 2, 3].map((i) =>
        j.recordStatement({
          sessionId: id,
          sql: `SELECT ${i}`,
          protocol: 'simple',
          kinds: ['read'],
          decision: 'allow',
          ruleId: null,
          message: null,
          startedAt: new Date(),
        }),
      ),
    );
    expect((await j.listStatements(id)).map((r) => r.id)).toEqual(ids);
  });

  it('a reader of the store sees a statement within a second, without asking (the indexer thread)', async () => {
    const { db, journal: jdir } = setup();
    const s = await store(db);
    const j = await journal(s, jdir, { storeUrl: `sqlite:${db}` });
    const id = await j.createSession({ target: 'app', engine: 'postgres', identity, client, startedAt: new Date() });
    await j.synced(); // the thread has started (once per broker start) and indexed the session
    await j.recordStatement({
      sessionId: id,
      sql: 'SELECT now()',
      protocol: 'simple',
      kinds: ['read'],
      decision: 'allow',
      ruleId: null,
      message: null,
      startedAt: new Date(),
    });
    // Straight from the store, not through the journaled store's wait.
    const rows = await eventually(async () => {
      const r = await s.listStatements(id);
      return r.length ? r : null;
    }, 1000);
    expect(rows[0]!.sql).toBe('SELECT now()');
  });

  it('refuses a statement of a session it never opened', async () => {
    const { db, journal: jdir } = setup();
    const j = await journal(await store(db), jdir);
    await expect(
      j.recordStatement({
        sessionId: 's_nope',
        sql: 'SELECT 1',
        protocol: 'simple',
        kinds: ['read'],
        decision: 'allow',
        ruleId: null,
        message: null,
        startedAt: new Date(),
      }),
    ).rejects.toThrow(/not open here/);
  });
});
