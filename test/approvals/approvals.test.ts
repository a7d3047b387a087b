// Approvals on their own: requests, decisions, min_approvals, approvers, own requests, timeouts,
// cancellation, the bus, restart recovery — against the real SQLite store (in memory).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  Approvals,
  type ApprovalEvent,
  type ApprovalInput,
  type ApprovalRequest,
  type ApprovalStore,
  type ReviewSettings,
} from '../../broker/approvals/index.js';
import { formatDuration, isGroupApprover, isListedApprover, isOwnRequest } from '../../broker/approvals/approvers.js';
import { openStore, type Store } from '../../broker/store/index.js';
import type { Identity } from '../../broker/types.js';

let store: Store;
let sessionId: string;
let approvals: Approvals;
let events: ApprovalEvent[];

const identity = (claims: Record<string, unknown> = {}, subject = 'repo:acme/api:ref:main'): Identity => ({
  subject,
  issuer: 'https://ci.example',
  build: 'build-7',
  claims,
  actors: ['agent:fixer'],
  tokenId: null,
  expiresAt: new Date(Date.now() + 3_600_000),
});

function input(settings: Partial<ReviewSettings> = {}, who = identity()): ApprovalInput {
  return {
    target: 'app',
    sessionId,
    statementId: null,
    identity: who,
    sql: 'DROP TABLE t',
    kinds: ['destructive'],
    ruleId: 'hold',
    settings: { approvers: [], timeoutSeconds: 300, minApprovals: 1, scope: 'statement', ...settings },
  };
}

/** Makes a request and returns its id (from the `requested` event) and the promise of its end. */
async function hold(settings: Partial<ReviewSettings> = {}, who = identity(), signal?: AbortSignal): Promise<{ id: string; done: Promise<ApprovalRequest> }> {
  const before = events.length;
  const done = approvals.request(input(settings, who), { signal });
  await vi.waitFor(() => expect(events.length).toBeGreaterThan(before));
  const e = events[before]!;
  expect(e.type).toBe('requested');
  return { id: e.request.id, done };
}

beforeEach(async () => {
  store = await openStore('sqlite::memory:');
  sessionId = await store.createSession({
    target: 'app',
    engine: 'postgres',
    identity: identity(),
    client: { address: '127.0.0.1', port: 1, application: null, user: null, tls: true },
    startedAt: new Date(),
  });
  approvals = new Approvals({ store });
  events = [];
  approvals.on((e) => events.push(e));
});
afterEach(async () => {
  vi.useRealTimers();
  await approvals.close();
  await store.close();
});

describe('Approvals: one request', () => {
  it('publishes `requested`, is pending, and resolves approved after one approval', async () => {
    const { id, done } = await hold();
    expect(approvals.pending().map((r) => r.id)).toEqual([id]);
    expect(await store.getApproval(id)).toMatchObject({
      state: 'pending',
      subject: 'repo:acme/api:ref:main',
      build: 'build-7',
      actors: ['agent:fixer'],
      ruleId: 'hold',
    });
    const r = await approvals.decide(id, { approve: true, by: 'U1', reason: 'looks fine' });
    expect(r).toMatchObject({ ok: true, request: { state: 'approved', decidedBy: 'U1', reason: 'looks fine' } });
    expect(await done).toMatchObject({ id, state: 'approved', approvals: [{ by: 'U1' }] });
    expect(events.map((e) => [e.type, e.request.state])).toEqual([
      ['requested', 'pending'],
      ['updated', 'approved'],
    ]);
    expect(await store.getApproval(id)).toMatchObject({ state: 'approved', decidedBy: 'U1', approvals: [{ by: 'U1' }] });
    expect(approvals.pending()).toEqual([]);
  });

  it('a deny ends it with who and why', async () => {
    const { id, done } = await hold({ minApprovals: 3 });
    expect((await approvals.decide(id, { approve: false, by: 'U2', reason: 'not during business hours' })).ok).toBe(true);
    expect(await done).toMatchObject({ state: 'denied', decidedBy: 'U2', reason: 'not during business hours' });
  });

  it('min_approvals counts distinct approvers; one deny still denies', async () => {
    const { id, done } = await hold({ minApprovals: 2 });
    const first = await approvals.decide(id, { approve: true, by: 'U1' });
    expect(first).toMatchObject({ ok: true, request: { state: 'pending', approvals: [{ by: 'U1' }] } });
    expect(events.at(-1)).toMatchObject({ type: 'updated', request: { state: 'pending' } });
    expect(await approvals.decide(id, { approve: true, by: 'u1' })).toMatchObject({ ok: false, code: 'already_approved' });
    expect((await approvals.decide(id, { approve: true, by: 'U3' })).ok).toBe(true);
    expect(await done).toMatchObject({ state: 'approved', decidedBy: 'U3', approvals: [{ by: 'U1' }, { by: 'U3' }] });

    const second = await hold({ minApprovals: 2 });
    await approvals.decide(second.id, { approve: true, by: 'U1' });
    await approvals.decide(second.id, { approve: false, by: 'U4', reason: 'no' });
    expect(await second.done).toMatchObject({ state: 'denied', decidedBy: 'U4' });
  });

  it('a decision after the end changes nothing and says who ended it, and when', async () => {
    const { id, done } = await hold();
    await approvals.decide(id, { approve: false, by: 'U2', reason: 'no' });
    await done;
    const again = await approvals.decide(id, { approve: true, by: 'U1' });
    expect(again).toMatchObject({ ok: false, code: 'ended', request: { state: 'denied', decidedBy: 'U2' } });
    expect(again.ok || again.message).toMatch(/already ended: denied by U2 at \d{4}-.*\(no\); nothing changed/);
    expect(await approvals.cancel(id, 'late')).toBe(false);
    expect(await store.getApproval(id)).toMatchObject({ state: 'denied', decidedBy: 'U2' });
    expect(await approvals.decide('a_nope', { approve: true, by: 'U1' })).toMatchObject({ ok: false, code: 'not_found' });
  });

  it('the requester cannot approve their own request (e-mail claim or e-mail subject), but may deny it', async () => {
    const mine = await hold({}, identity({ email: 'Dev@Acme.com' }));
    expect(await approvals.decide(mine.id, { approve: true, by: 'U9', email: 'dev@acme.com' })).toMatchObject({ ok: false, code: 'own_request' });
    expect(await approvals.decide(mine.id, { approve: true, by: 'api:dev@acme.com', trusted: true })).toMatchObject({ ok: false, code: 'own_request' });
    expect(await approvals.decide(mine.id, { approve: true, by: 'U8', email: 'other@acme.com' })).toMatchObject({ ok: true });
    const local = await hold({}, identity({}, 'alice@acme.com'));
    expect(await approvals.decide(local.id, { approve: true, by: 'U1', email: 'alice@acme.com' })).toMatchObject({ ok: false, code: 'own_request' });
    expect(await approvals.decide(local.id, { approve: false, by: 'U1', email: 'alice@acme.com', reason: 'changed my mind' })).toMatchObject({ ok: true });
    expect(await local.done).toMatchObject({ state: 'denied' });
  });

  it('an approvers list admits listed ids, e-mails and members of listed groups (as the bot verified), and admin-token deciders', async () => {
    const approvers = ['U111', 'dba@acme.com', '@dba-oncall', 'S0GROUP01'];
    const { id } = await hold({ approvers, minApprovals: 5 });
    expect(await approvals.decide(id, { approve: true, by: 'U222' })).toMatchObject({ ok: false, code: 'not_approver' });
    expect(await approvals.decide(id, { approve: true, by: 'U222', groups: ['@other'] })).toMatchObject({ ok: false, code: 'not_approver' });
    for (const d of [
      { by: 'U111' },
      { by: 'U333', email: 'DBA@acme.com' },
      { by: 'U444', groups: ['dba-oncall'] },
      { by: 'U555', groups: ['S0GROUP01'] },
      { by: 'cli:root', trusted: true },
    ])
      expect(await approvals.decide(id, { approve: true, ...d })).toMatchObject({ ok: true });
    expect((await approvals.get(id))?.state).toBe('approved');
  });
});

describe('Approvals: ends without a decision', () => {
  it('expires when its timeout passes (timers)', async () => {
    vi.useFakeTimers();
    const done = approvals.request(input({ timeoutSeconds: 300 }));
    await vi.advanceTimersByTimeAsync(0);
    const id = events[0]!.request.id;
    await vi.advanceTimersByTimeAsync(299_000);
    expect((await approvals.get(id))?.state).toBe('pending');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await done).toMatchObject({ state: 'expired', decidedBy: null, reason: 'no decision within 5m' });
    expect(await store.getApproval(id)).toMatchObject({ state: 'expired' });
    expect(await approvals.decide(id, { approve: true, by: 'U1' })).toMatchObject({ ok: false, code: 'ended' });
  });

  it('a timeout longer than setTimeout allows still expires at the right time', async () => {
    vi.useFakeTimers();
    const done = approvals.request(input({ timeoutSeconds: 30 * 86_400 }));
    await vi.advanceTimersByTimeAsync(29 * 86_400_000);
    expect(approvals.pending()).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(86_400_000);
    expect((await done).state).toBe('expired');
  });

  it('aborting the signal, cancel(), cancelSession() and close() cancel with their reason', async () => {
    const ac = new AbortController();
    const a = await hold({}, identity(), ac.signal);
    ac.abort('client disconnected');
    expect(await a.done).toMatchObject({ state: 'cancelled', reason: 'client disconnected' });

    const pre = new AbortController();
    pre.abort(new Error('gone already'));
    expect(await approvals.request(input(), { signal: pre.signal })).toMatchObject({ state: 'cancelled', reason: 'gone already' });

    const b = await hold();
    expect(await approvals.cancel(b.id, 'operator')).toBe(true);
    expect(await b.done).toMatchObject({ state: 'cancelled', reason: 'operator' });

    const c1 = await hold();
    const c2 = await hold();
    expect(await approvals.cancelSession(sessionId, 'client disconnected')).toBe(2);
    expect((await Promise.all([c1.done, c2.done])).map((r) => r.state)).toEqual(['cancelled', 'cancelled']);

    const d = await hold();
    await approvals.close('shutting down');
    expect(await d.done).toMatchObject({ state: 'cancelled', reason: 'shutting down' });
    await expect(approvals.request(input())).rejects.toThrow(/shutting down/);
  });
});

describe('Approvals: bus, message ref, store', () => {
  it('setMessage stores the ref (also once ended) and publishes nothing; unknown ids say false', async () => {
    const { id, done } = await hold();
    const n = events.length;
    expect(await approvals.setMessage(id, { channel: 'C1', ts: '1.2' })).toBe(true);
    expect((await approvals.get(id))?.message).toEqual({ channel: 'C1', ts: '1.2' });
    await approvals.decide(id, { approve: true, by: 'U1' });
    await done;
    expect(await approvals.setMessage(id, { channel: 'C1', ts: '1.3' })).toBe(true);
    expect(await store.getApproval(id)).toMatchObject({ state: 'approved', message: { channel: 'C1', ts: '1.3' } });
    expect(events.length).toBe(n + 1); // only the decision's `updated`
    expect(await approvals.setMessage('a_unknown', { channel: 'C1', ts: '1' })).toBe(false);
  });

  it('a throwing listener does not stop the others or the request; unsubscribe stops delivery', async () => {
    const log = vi.fn();
    const a = new Approvals({ store, log });
    const seen: string[] = [];
    a.on(() => {
      throw new Error('bot bug');
    });
    const off = a.on((e) => seen.push(e.type));
    const done = a.request(input());
    await vi.waitFor(() => expect(seen).toEqual(['requested']));
    off();
    const [r] = a.pending();
    await a.decide(r!.id, { approve: true, by: 'U1' });
    expect((await done).state).toBe('approved');
    expect(seen).toEqual(['requested']);
    expect(log).toHaveBeenCalledWith('approval listener failed', expect.objectContaining({ error: 'Error: bot bug' }));
  });

  it('events carry snapshots: a listener mutating one changes nothing', async () => {
    approvals.on((e) => void e.request.approvals.push({ by: 'mallory', at: new Date() }));
    const { id } = await hold({ minApprovals: 2 });
    expect((await approvals.get(id))?.approvals).toEqual([]);
  });

  it('recoverStale cancels what an earlier process left pending ("broker restarted"), publishes each, and spares live requests', async () => {
    const earlier = new Approvals({ store }); // a process that died with requests pending
    void earlier.request(input());
    void earlier.request(input());
    await vi.waitFor(() => expect(earlier.pending()).toHaveLength(2));
    const live = await hold();
    const stale = await approvals.recoverStale();
    expect(stale.map((r) => [r.state, r.reason])).toEqual([
      ['cancelled', 'broker restarted'],
      ['cancelled', 'broker restarted'],
    ]);
    expect(
      events
        .filter((e) => e.type === 'updated')
        .map((e) => e.request.id)
        .sort(),
    ).toEqual(stale.map((r) => r.id).sort());
    expect((await approvals.get(live.id))?.state).toBe('pending');
    const old = stale[0]!.id;
    expect(await approvals.decide(old, { approve: true, by: 'U1' })).toMatchObject({ ok: false, code: 'ended' });
    await earlier.close();
  });

  it('an approval that cannot be recorded does not release the statement: the request ends cancelled and decide() rejects', async () => {
    let fail = false;
    const flaky: ApprovalStore = {
      createApproval: (r) => store.createApproval(r),
      updateApproval: (r) => (fail ? Promise.reject(new Error('disk full')) : store.updateApproval(r)),
      getApproval: (id) => store.getApproval(id),
      listApprovals: (f) => store.listApprovals(f),
      cancelPendingApprovals: (reason, except) => store.cancelPendingApprovals(reason, except),
    };
    const a = new Approvals({ store: flaky });
    const done = a.request(input({ minApprovals: 2 }));
    await vi.waitFor(() => expect(a.pending()).toHaveLength(1));
    const id = a.pending()[0]!.id;
    fail = true;
    await expect(a.decide(id, { approve: true, by: 'U1' })).rejects.toThrow('disk full');
    expect((await a.get(id))?.approvals).toEqual([]); // the unrecorded approval does not count
    fail = false;
    expect(await a.decide(id, { approve: true, by: 'U1' })).toMatchObject({ ok: true, request: { state: 'pending' } });
    fail = true;
    await expect(a.decide(id, { approve: true, by: 'U2' })).rejects.toThrow('disk full');
    expect(await done).toMatchObject({ state: 'cancelled', reason: expect.stringMatching(/could not be recorded.*not run/) });
  });

  it('list() filters by state, session and build, and shows held requests as they are now', async () => {
    const a = await hold();
    const b = await hold();
    await approvals.decide(b.id, { approve: false, by: 'U1', reason: 'no' });
    expect((await approvals.list({ state: 'pending' })).map((r) => r.id)).toEqual([a.id]);
    expect((await approvals.list({ sessionId })).map((r) => r.id)).toEqual([a.id, b.id]);
    expect(await approvals.list({ build: 'other' })).toEqual([]);
    expect((await approvals.list({ limit: 1 })).map((r) => r.id)).toEqual([b.id]);
  });
});

describe('approvers helpers', () => {
  it('isListedApprover, isOwnRequest, formatDuration', () => {
    expect(isListedApprover([], { by: 'anyone' })).toBe(true);
    expect(isListedApprover(['@dba'], { by: 'U1', groups: ['@DBA'] })).toBe(true);
    expect(isListedApprover(['U1'], { by: 'U2', groups: ['U1'] })).toBe(false); // a person is not a group
    expect(isOwnRequest({ subject: 'ci', claims: {} }, { by: 'U1', email: 'a@b.co' })).toBe(false); // unmappable
    expect(isOwnRequest({ subject: 'ci', claims: { email: 'a@b.co' } }, { by: 'cli:a@b.co' })).toBe(true);
    expect([0.5, 1, 90, 300, 3600, 90061].map(formatDuration)).toEqual(['500ms', '1s', '1m30s', '5m', '1h', '1d1h1m1s']);
  });

  it('a group written with spaces around it is a group, for every caller alike', () => {
    // The bot trimmed an entry before deciding it was a group; the core did not (" @dba" was a person to it).
    expect(isGroupApprover(' @dba')).toBe(true);
    expect(isGroupApprover(' S01DBA00 ')).toBe(true);
    expect(isListedApprover([' @dba'], { by: 'U1', groups: ['@dba'] })).toBe(true);
    expect(isListedApprover([' @dba'], { by: 'U1', groups: [' @dba'] })).toBe(true);
    expect(isListedApprover([' S01DBA00 '], { by: 'U1', groups: ['S01DBA00'] })).toBe(true);
    expect(isListedApprover([' @dba'], { by: '@dba' })).toBe(false); // a group is not a person
  });
});
