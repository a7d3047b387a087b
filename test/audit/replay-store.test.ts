// The store's result samples: written with a statement's outcome (group commit) or on their own, read
// back per statement and per session; and a session's complete() hands its sample to the store without waiting.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ResultSample } from '../../broker/audit/types.js';
import { ConfigError, parseConfig } from '../../broker/config.js';
import { loadPostgresParser } from '../../broker/policy/index.js';
import { BrokerSession } from '../../broker/session.js';
import { openStore, type Store } from '../../broker/store/index.js';
import type { SqliteStore } from '../../broker/store/sqlite.js';

let dir: string;
let store: Store;
let sessionId: string;

const IDENTITY = { subject: 'ci', issuer: 'iss', build: 'build-1', claims: {}, actors: [], tokenId: null, expiresAt: new Date(2_000_000_000_000) };
const CLIENT = { address: '127.0.0.1', port: 1, application: null, user: null, tls: true };
const OUTCOME = { durationMs: 1.5, tag: 'SELECT 2', rows: 2, error: null };

const SAMPLE: ResultSample = {
  columns: [
    { name: 'id', type: 'int4' },
    { name: 'note', type: 'text' },
  ],
  rows: [
    ['1', 'héllo 😀'],
    ['2', null],
  ],
  truncated: true,
  bytes: 13,
};

beforeAll(() => loadPostgresParser());
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'jit-store-samples-'));
  store = await openStore(`sqlite:${join(dir, 'broker.db')}`);
  sessionId = await newSession();
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function newSession(): Promise<string> {
  return store.createSession({ target: 'app', engine: 'postgres', identity: IDENTITY, client: CLIENT, startedAt: new Date() });
}

function record(sid = sessionId, sql = 'SELECT id, note FROM t'): Promise<number> {
  return store.recordStatement({
    sessionId: sid,
    sql,
    protocol: 'simple',
    kinds: ['read'],
    decision: 'allow',
    ruleId: 'r',
    message: null,
    startedAt: new Date(),
  });
}

describe('store: result samples', () => {
  it('completeStatement writes the sample with the outcome, in the same group commit', async () => {
    const id = await record();
    const commits = (store as SqliteStore).commits;
    await store.completeStatement(id, OUTCOME, SAMPLE);
    expect((store as SqliteStore).commits).toBe(commits + 1);
    expect(await store.getSample(id)).toEqual(SAMPLE);
    expect((await store.listStatements(sessionId))[0]).toMatchObject({ tag: 'SELECT 2', rows: 2, durationMs: 1.5 });
  });

  it('without a sample (or null) none is written', async () => {
    const a = await record();
    const b = await record();
    await store.completeStatement(a, OUTCOME);
    await store.completeStatement(b, OUTCOME, null);
    expect(await store.getSample(a)).toBeNull();
    expect((await store.listSamples(sessionId)).size).toBe(0);
  });

  it('a sample for an unknown statement fails its own call only, not the others of its batch', async () => {
    const id = await record();
    const results = await Promise.allSettled([store.completeStatement(999_999, OUTCOME, SAMPLE), store.completeStatement(id, OUTCOME, SAMPLE)]);
    expect(results[0]).toMatchObject({ status: 'rejected', reason: { message: expect.stringContaining('unknown statement 999999') } });
    expect(results[1]!.status).toBe('fulfilled');
    expect(await store.getSample(id)).toEqual(SAMPLE);
    expect(await store.getSample(999_999)).toBeNull();
  });

  it('recordSample writes one on its own (a second replaces the first); unknown statements are refused', async () => {
    const id = await record();
    await store.recordSample(id, SAMPLE);
    const other: ResultSample = { columns: [{ name: 'n', type: '23' }], rows: [['1']], truncated: false, bytes: 1 };
    await store.recordSample(id, other);
    expect(await store.getSample(id)).toEqual(other);
    await expect(store.recordSample(424_242, SAMPLE)).rejects.toThrow(/unknown statement 424242/);
  });

  it('recordSample right after an unawaited recordStatement: the queued record lands first', async () => {
    const pending = record();
    const id = await pending;
    void store.completeStatement(id, OUTCOME);
    await store.recordSample(id, SAMPLE);
    expect(await store.getSample(id)).toEqual(SAMPLE);
  });

  it("listSamples returns a session's samples by statement id, and no other session's", async () => {
    const a = await record();
    const b = await record();
    await record(); // no sample
    const otherSession = await newSession();
    const c = await record(otherSession);
    await Promise.all([
      store.completeStatement(a, OUTCOME, SAMPLE),
      store.completeStatement(b, OUTCOME, { ...SAMPLE, truncated: false }),
      store.completeStatement(c, OUTCOME, SAMPLE),
    ]);
    const samples = await store.listSamples(sessionId);
    expect([...samples.keys()]).toEqual([a, b]);
    expect(samples.get(b)!.truncated).toBe(false);
    expect([...(await store.listSamples(otherSession)).keys()]).toEqual([c]);
  });

  it('samples survive re-opening the store', async () => {
    const id = await record();
    await store.completeStatement(id, OUTCOME, SAMPLE);
    await store.close();
    store = await openStore(`sqlite:${join(dir, 'broker.db')}`);
    expect(await store.getSample(id)).toEqual(SAMPLE);
  });
});

describe('BrokerSession.complete with a sample', () => {
  it('returns at once; the sample is written with the outcome', async () => {
    const policy = { rules: [{ id: 'r', action: 'allow' as const }], default: 'deny' as const };
    const s = await BrokerSession.open(
      { store, policy, sampling: { rows: 5, bytes: 100 } },
      IDENTITY,
      { name: 'app', engine: 'postgres', upstream: 'x' },
      CLIENT,
    );
    const a = await s.admit({ sql: 'SELECT 1', protocol: 'simple' });
    expect(a.ok && a.statementId).toBeTypeOf('number');
    const id = a.statementId!;
    expect(s.complete(id, OUTCOME, SAMPLE)).toBeUndefined();
    expect(await store.getSample(id)).toEqual(SAMPLE);
  });

  it('gives engines a recorder per statement, within the sample bounds; none when sampling is off', async () => {
    const policy = { rules: [{ id: 'r', action: 'allow' as const }], default: 'deny' as const };
    const s = await BrokerSession.open({ store, policy, sampling: { rows: 2, bytes: 100 } }, IDENTITY, { name: 'app', engine: 'mysql', upstream: 'x' }, CLIENT);
    const a = await s.admit({ sql: 'SELECT 1', protocol: 'simple' });
    const r = s.recorder()!;
    r.columns([{ name: 'n', type: 'int' }]);
    for (const v of ['1', '2', '3']) r.row([v]);
    expect(r.wants).toBe(false);
    s.complete(a.statementId!, OUTCOME, r.done());
    expect(await store.getSample(a.statementId!)).toEqual({ columns: [{ name: 'n', type: 'int' }], rows: [['1'], ['2']], truncated: true, bytes: 2 });
    expect(s.recorder()).not.toBe(s.recorder());
    const off = await BrokerSession.open({ store, policy }, IDENTITY, { name: 'app', engine: 'postgres', upstream: 'x' }, CLIENT);
    expect(off.recorder()).toBeNull();
  });
});

describe('config: audit', () => {
  const parse = (extra: string) =>
    parseConfig(`targets: { app: { engine: postgres, upstream: "postgres://x@h/db" } }\n${extra}`, { file: null, baseDir: dir, env: {} });

  it('defaults to 100 rows and 65536 bytes; 0 turns sampling off; negative or fractional values are errors', () => {
    expect(parse('').audit).toMatchObject({ sample_rows: 100, sample_bytes: 65536 });
    expect(parse('audit: { sample_rows: 0 }').audit).toMatchObject({ sample_rows: 0, sample_bytes: 65536 });
    expect(() => parse('audit: { sample_rows: -1 }')).toThrow(ConfigError);
    expect(() => parse('audit: { sample_bytes: 1.5 }')).toThrow(/audit\.sample_bytes/);
    expect(() => parse('audit: { sample: 5 }')).toThrow(/audit/);
  });
});
