// The store's approval requests: created with a link from their statement, updated, listed,
// cancelled at restart; a statement run under a session-scope approval records which one.
// Run against both dialects (see dialects.ts).
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ApprovalRequest } from '../../broker/approvals/types.js';
import { newApprovalId, openStore, type Store } from '../../broker/store/index.js';
import { dialects } from './dialects.js';

let store: Store;
let sessionId: string;

function newSession(build: string | null): Promise<string> {
  return store.createSession({
    target: 'app',
    engine: 'postgres',
    identity: {
      subject: 'ci',
      issuer: 'iss',
      build,
      claims: { email: 'dev@acme.com' },
      actors: ['agent'],
      tokenId: null,
      expiresAt: new Date(2_000_000_000_000),
    },
    client: { address: '127.0.0.1', port: 1, application: null, user: null, tls: true },
    startedAt: new Date(),
  });
}

function request(over: Partial<ApprovalRequest> = {}): ApprovalRequest {
  const at = over.requestedAt ?? new Date(1_800_000_000_000);
  return {
    id: newApprovalId(),
    target: 'app',
    sessionId,
    statementId: null,
    subject: 'ci',
    build: 'build-1',
    claims: { email: 'dev@acme.com' },
    actors: ['agent'],
    sql: 'DROP TABLE t',
    kinds: ['destructive'],
    ruleId: 'hold',
    settings: { approvers: ['@dba'], timeoutSeconds: 300, minApprovals: 2, scope: 'statement' },
    requestedAt: at,
    expiresAt: new Date(at.getTime() + 300_000),
    state: 'pending',
    approvals: [],
    decidedBy: null,
    decidedAt: null,
    reason: null,
    message: null,
    estimate: null,
    ...over,
  };
}

describe.each(dialects('approvals'))('store ($name): approvals', (d) => {
  let url: string;
  beforeAll(() => d.setup());
  afterAll(() => d.teardown());
  beforeEach(async () => {
    url = await d.fresh();
    store = await openStore(url);
    sessionId = await newSession('build-1');
  });
  afterEach(async () => {
    await store.close();
  });

  it('creates (linking its statement), updates and reads back every field', async () => {
    const statementId = await store.recordStatement({
      sessionId,
      sql: 'DROP TABLE t',
      protocol: 'simple',
      kinds: ['destructive'],
      decision: 'review',
      ruleId: 'hold',
      message: 'needs approval',
      startedAt: new Date(),
    });
    const r = request({ statementId });
    await store.createApproval(r);
    expect(await store.getApproval(r.id)).toEqual(r);
    expect((await store.listStatements(sessionId))[0]!.approvalId).toBe(r.id);

    const decided: ApprovalRequest = {
      ...r,
      estimate: { rows: 12400, bytes: null, tables: ['orders'], source: 'explain', text: '≈ 12,400 rows of orders' },
      state: 'approved',
      approvals: [
        { by: 'U1', at: new Date(1_800_000_001_000) },
        { by: 'U2', at: new Date(1_800_000_002_000) },
      ],
      decidedBy: 'U2',
      decidedAt: new Date(1_800_000_002_000),
      reason: 'ok',
      message: { channel: 'C1', ts: '1700000000.000100' },
      sql: 'ignored: only the mutable part is written',
    };
    await store.updateApproval(decided);
    expect(await store.getApproval(r.id)).toEqual({ ...decided, sql: 'DROP TABLE t' });
    await expect(store.updateApproval(request())).rejects.toThrow(/unknown approval request/);
    expect(await store.getApproval('a_nope')).toBeNull();
  });

  it('lists by state, session and build, oldest first; a limit keeps the most recent', async () => {
    const other = await newSession('build-2');
    const a = request({ requestedAt: new Date(1_800_000_000_000) });
    const b = request({ requestedAt: new Date(1_800_000_001_000), state: 'denied' });
    const c = request({ requestedAt: new Date(1_800_000_002_000), sessionId: other, build: 'build-2' });
    for (const r of [c, a, b]) await store.createApproval(r);
    const ids = (rs: ApprovalRequest[]) => rs.map((r) => r.id);
    expect(ids(await store.listApprovals({}))).toEqual([a.id, b.id, c.id]);
    expect(ids(await store.listApprovals({ state: 'pending' }))).toEqual([a.id, c.id]);
    expect(ids(await store.listApprovals({ sessionId: other }))).toEqual([c.id]);
    expect(ids(await store.listApprovals({ build: 'build-1' }))).toEqual([a.id, b.id]);
    expect(ids(await store.listApprovals({ limit: 2 }))).toEqual([b.id, c.id]);
  });

  it('cancelPendingApprovals ends only pending ones (sparing `except`) and returns them', async () => {
    const a = request();
    const b = request({ state: 'approved', decidedBy: 'U1', decidedAt: new Date() });
    const live = request();
    for (const r of [a, b, live]) await store.createApproval(r);
    const cancelled = await store.cancelPendingApprovals('broker restarted', [live.id]);
    expect(cancelled.map((r) => [r.id, r.state, r.reason, r.decidedBy])).toEqual([[a.id, 'cancelled', 'broker restarted', null]]);
    expect(cancelled[0]!.decidedAt).toBeInstanceOf(Date);
    expect((await store.getApproval(b.id))?.state).toBe('approved');
    expect((await store.getApproval(live.id))?.state).toBe('pending');
    expect(await store.cancelPendingApprovals('again', [live.id])).toEqual([]);
  });

  it('a statement records the session-scope approval it ran under; the approval survives re-opening', async () => {
    const r = request();
    await store.createApproval(r);
    await store.recordStatement({
      sessionId,
      sql: 'DROP TABLE t',
      protocol: 'simple',
      kinds: ['destructive'],
      decision: 'review',
      ruleId: 'hold',
      message: null,
      startedAt: new Date(),
      approvalId: r.id,
    });
    await store.close();
    store = await openStore(url);
    expect((await store.listStatements(sessionId)).map((s) => s.approvalId)).toEqual([r.id]);
    expect((await store.getApproval(r.id))?.id).toBe(r.id);
  });

  it('refuses a request for an unknown session (foreign key)', async () => {
    await expect(store.createApproval(request({ sessionId: 's_unknown' }))).rejects.toThrow(/foreign key/i);
  });
});
