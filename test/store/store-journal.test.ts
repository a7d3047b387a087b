// The audit journal's side of the store contract, against both dialects: ingest() applies a batch with the
// position in one transaction, a replayed batch changes nothing, an event that cannot be applied is skipped
// and counted (the rest of the batch lands), and statement ids come in blocks above every stored id.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type JournalEvent, type Store } from '../../broker/store/index.js';
import { dialects } from './dialects.js';

const T0 = 1_700_000_000_000;

function open(id: string, replicaId: string | null = 'replica-a'): JournalEvent {
  return {
    t: 'open',
    id,
    startedAt: T0,
    target: 'prod',
    engine: 'postgres',
    subject: 'ci',
    issuer: 'iss',
    build: 'b-1',
    claims: { run: 1 },
    actors: ['agent'],
    tokenId: null,
    clientAddress: '10.0.0.1',
    clientPort: 5000,
    clientApplication: 'psql',
    dbUser: 'app',
    tls: true,
    replicaId,
  };
}

function stmt(id: number, sessionId: string, seq: number, sql = `SELECT ${id}`): JournalEvent {
  return {
    t: 'stmt',
    id,
    seq,
    sessionId,
    sql,
    protocol: 'simple',
    kinds: ['read'],
    decision: 'allow',
    ruleId: 'readers',
    message: null,
    startedAt: T0 + id,
    approvalId: null,
  };
}

function done(id: number, rows = 1, sample = true): JournalEvent {
  return {
    t: 'done',
    id,
    durationMs: 1.5,
    tag: `SELECT ${rows}`,
    rows,
    error: null,
    sample: sample ? { columns: [{ name: 'n', type: 'int4' }], rows: [[String(rows)]], truncated: false, bytes: 1 } : null,
  };
}

describe.each(dialects('journal'))('store ($name): journal ingest', (d) => {
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
  async function store(): Promise<Store> {
    const s = await openStore(url);
    opened.push(s);
    return s;
  }

  /** Everything a reader sees of a session: summary, statements, samples. */
  async function view(s: Store, id: string) {
    return { session: await s.getSession(id), statements: await s.listStatements(id), samples: [...(await s.listSamples(id))] };
  }

  it('applies a batch with its position; a replay of it changes nothing', async () => {
    const s = await store();
    const first = await s.reserveStatementIds(10);
    const sid = 's_journal0000000';
    const batch: JournalEvent[] = [
      open(sid),
      stmt(first, sid, 1),
      done(first, 3), // recorded and finished in one batch: one row, with its outcome
      stmt(first + 1, sid, 2, 'SELECT pending'),
      { t: 'end', id: sid, reason: 'client disconnected', at: T0 + 5000 },
      { t: 'end', id: sid, reason: 'second end loses', at: T0 + 9000 },
    ];
    expect(await s.journalPosition('j-1')).toBeNull();
    expect(await s.ingest('j-1', batch, { segment: 1, offset: 4096 })).toBe(0);
    expect(await s.journalPosition('j-1')).toEqual({ segment: 1, offset: 4096 });
    expect(await s.journalPosition('j-2')).toBeNull(); // each journal has its own position

    const before = await view(s, sid);
    expect(before.session).toMatchObject({
      replicaId: 'replica-a',
      statementCount: 2,
      allowed: 2,
      endReason: 'client disconnected',
      endedAt: new Date(T0 + 5000),
      claims: { run: 1 },
      tls: true,
    });
    expect(before.statements.map((r) => [r.id, r.seq, r.sql, r.tag, r.durationMs])).toEqual([
      [first, 1, `SELECT ${first}`, 'SELECT 3', 1.5],
      [first + 1, 2, 'SELECT pending', null, null],
    ]);
    expect(before.samples).toEqual([[first, { columns: [{ name: 'n', type: 'int4' }], rows: [['3']], truncated: false, bytes: 1 }]]);

    // The indexer crashed after the commit and reads the batch again: nothing changes (the statements already there count as skipped, as in SQLite).
    await s.ingest('j-1', batch, { segment: 1, offset: 4096 });
    expect(await view(s, sid)).toEqual(before);

    // The outcome of the pending statement comes in a later batch: an update.
    expect(await s.ingest('j-1', [done(first + 1, 7)], { segment: 1, offset: 5000 })).toBe(0);
    expect((await s.listStatements(sid))[1]).toMatchObject({ tag: 'SELECT 7', rows: 7 });
    expect((await s.getSample(first + 1))?.rows).toEqual([['7']]);
    expect(await s.journalPosition('j-1')).toEqual({ segment: 1, offset: 5000 });
  });

  it("records a session's database role: from the journal's open event (null in an event written before it), and from createSession with a chosen id", async () => {
    const s = await store();
    const withRole = { ...(open('s_journalrole0001') as Extract<JournalEvent, { t: 'open' }>), dbRole: 'jit_s_journalrole0001' };
    await s.ingest('j-1', [withRole, open('s_journalrole0002')], { segment: 1, offset: 1 });
    expect((await s.getSession('s_journalrole0001'))?.dbRole).toBe('jit_s_journalrole0001');
    expect((await s.getSession('s_journalrole0002'))?.dbRole).toBeNull();
    const id = await s.createSession({
      id: 's_journalrole0003',
      dbRole: 'jit_s_journalrole0003',
      target: 'prod',
      engine: 'mysql',
      identity: { subject: 'ci', issuer: 'iss', build: null, claims: {}, actors: [], tokenId: null, expiresAt: new Date(T0 + 60_000) },
      client: { address: '10.0.0.1', port: 1, application: null, user: null, tls: true },
      startedAt: new Date(T0),
    });
    expect(id).toBe('s_journalrole0003');
    expect((await s.listSessions({ open: true })).find((x) => x.id === id)?.dbRole).toBe('jit_s_journalrole0003');
  });

  it('skips and counts what it cannot apply; the rest of the batch lands', async () => {
    const s = await store();
    const first = await s.reserveStatementIds(10);
    const sid = 's_journal0000001';
    const skipped = await s.ingest(
      'j-1',
      [
        open(sid),
        stmt(first, sid, 1),
        stmt(first + 1, 's_neverseen00000', 1), // a session the store never saw
        done(first + 2), // the outcome (and sample) of a statement it never saw: two skips
        stmt(first + 3, sid, 2),
      ],
      { segment: 2, offset: 10 },
    );
    expect(skipped).toBe(3);
    expect((await s.listStatements(sid)).map((r) => r.id)).toEqual([first, first + 3]);
    expect(await s.journalPosition('j-1')).toEqual({ segment: 2, offset: 10 });
  });

  it('reserves blocks of statement ids above every stored one, never twice', async () => {
    const s = await store();
    const a = await s.reserveStatementIds(100);
    const b = await s.reserveStatementIds(5);
    expect(b).toBeGreaterThanOrEqual(a + 100);
    const sid = 's_journal0000002';
    await s.ingest('j-1', [open(sid), stmt(b + 1000, sid, 1)], { segment: 1, offset: 1 }); // stored past the counter
    expect(await s.reserveStatementIds(1)).toBeGreaterThan(b + 1000);
    await expect(s.reserveStatementIds(0)).rejects.toThrow(/cannot reserve 0/);
  });
});
