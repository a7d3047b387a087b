// Approvals: a statement whose decision is `review` waits here for people to decide it. A request is
// written to the store when it is made and at every change, published on the bus (the Slack bot posts
// and updates its message), and ends approved, denied, expired (its timer) or cancelled (its client
// went away, the broker stopped). Whoever awaits request() learns the end; nothing else waits on it.
import { newApprovalId, type Store } from '../store/index.js';
import { formatDuration, isListedApprover, isOwnRequest } from './approvers.js';
import { InProcessBus, type ApprovalBus, type ApprovalListener } from './bus.js';
import type { ApprovalFilter, ApprovalInput, ApprovalRequest, ApprovalState, DecisionInput, DecisionResult } from './types.js';
import type { ApprovalExpectation, BlastRadius } from '../store/types.js';
import { addEstimate } from './estimate.js';

export type * from './types.js';
export { InProcessBus, type ApprovalBus, type ApprovalListener } from './bus.js';
export { formatDuration, isGroupApprover, isListedApprover, isOwnRequest, requesterEmails } from './approvers.js';

export type ApprovalStore = Pick<Store, 'createApproval' | 'updateApproval' | 'getApproval' | 'listApprovals' | 'cancelPendingApprovals'>;

/** How request changes travel between the replicas of a fleet (a LISTEN/NOTIFY channel: broker/fleet). */
export interface ApprovalFleet {
  /** Tells the other replicas that request `id` changed in the store. */
  changed(id: string): void;
  /** Calls `listener` with the id of a request another replica changed; returns the unsubscribe function. */
  onChanged(listener: (id: string) => void): () => void;
}

export interface ApprovalsOptions {
  store: ApprovalStore;
  /**
   * Brokers sharing one store (broker/fleet): a request held by another replica can be decided here (a
   * conditional write to the store, then a notice), and a notice that a request held here was decided
   * elsewhere releases or refuses its statement. Absent: the only broker on its store.
   */
  fleet?: ApprovalFleet | null;
  /** Default: an in-process bus. */
  bus?: ApprovalBus;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/** A request this process holds a statement for. */
interface Live {
  /** The current state; only ever changed synchronously, then persisted. */
  request: ApprovalRequest;
  resolve: (r: ApprovalRequest) => void;
  timer: NodeJS.Timeout | null;
  /** Writes of this request, in order (each writes the state as it is when it runs). */
  writes: Promise<void>;
  detach: () => void;
}

type Ended = Exclude<ApprovalState, 'pending'>;

/** setTimeout's limit (~24.8 days); a longer timeout re-arms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const copy = (r: ApprovalRequest): ApprovalRequest => structuredClone(r);

export class Approvals {
  private readonly live = new Map<string, Live>();
  private readonly bus: ApprovalBus;
  private closed = false;

  private readonly unsubscribeFleet: () => void;

  constructor(private readonly opts: ApprovalsOptions) {
    this.bus = opts.bus ?? new InProcessBus((e, event) => opts.log?.('approval listener failed', { error: String(e), event: event.type }));
    this.unsubscribeFleet =
      opts.fleet?.onChanged((id) => {
        this.remoteChanged(id).catch((e: unknown) => opts.log?.('approval change from another replica could not be read', { approval: id, error: String(e) }));
      }) ?? (() => {});
  }

  /**
   * Records a pending request, publishes `requested`, and resolves when the request ends, with its
   * final state. Rejects only when the request cannot be recorded (then nobody was asked: refuse).
   * Aborting `signal` cancels the request with the signal's reason (a string, or an Error's message).
   */
  async request(input: ApprovalInput, opts: { signal?: AbortSignal } = {}): Promise<ApprovalRequest> {
    if (this.closed) throw new Error('approvals: the broker is shutting down');
    const now = new Date();
    const { identity, settings } = input;
    const request: ApprovalRequest = {
      id: newApprovalId(),
      target: input.target,
      sessionId: input.sessionId,
      statementId: input.statementId,
      subject: identity.subject,
      build: identity.build,
      claims: identity.claims,
      actors: [...identity.actors],
      sql: input.sql,
      kinds: [...input.kinds],
      ruleId: input.ruleId,
      policyVersion: input.policyVersion ?? null,
      settings: { ...settings, approvers: [...settings.approvers] },
      requestedAt: now,
      expiresAt: new Date(now.getTime() + settings.timeoutSeconds * 1000),
      state: 'pending',
      approvals: [],
      decidedBy: null,
      decidedAt: null,
      reason: null,
      message: null,
      estimate: null,
    };
    await this.opts.store.createApproval(copy(request));
    let resolve!: (r: ApprovalRequest) => void;
    const done = new Promise<ApprovalRequest>((res) => (resolve = res));
    const live: Live = { request, resolve, timer: null, writes: Promise.resolve(), detach: () => {} };
    this.live.set(request.id, live);
    this.arm(live);
    this.opts.log?.('approval requested', { approval: request.id, session: request.sessionId, rule: request.ruleId });
    this.bus.publish({ type: 'requested', request: copy(request) });
    if (input.estimate) addEstimate(this, request.id, input.estimate, this.opts.log);
    const signal = opts.signal;
    const why = () => (typeof signal?.reason === 'string' ? signal.reason : signal?.reason instanceof Error ? signal.reason.message : 'cancelled');
    if (this.closed || signal?.aborted) void this.end(live, 'cancelled', null, this.closed ? 'the broker is shutting down' : why());
    else if (signal) {
      const onAbort = () => void this.end(live, 'cancelled', null, why());
      signal.addEventListener('abort', onAbort, { once: true });
      live.detach = () => signal.removeEventListener('abort', onAbort);
    }
    return done;
  }

  /**
   * One person's decision. A deny ends the request; an approval ends it once `minApprovals` distinct
   * people approved. Nothing changes (ok: false) when the request does not exist or has ended, when
   * the person is not on its approvers list (unless `trusted`), approves their own request, or
   * approves twice. Rejects when the decision cannot be recorded (an approval then does not count).
   */
  async decide(id: string, d: DecisionInput): Promise<DecisionResult> {
    const live = this.live.get(id);
    if (!live) {
      const stored = await this.opts.store.getApproval(id);
      if (!stored) return { ok: false, code: 'not_found', message: `no approval request '${id}'` };
      if (stored.state === 'pending' && this.opts.fleet) return this.decideElsewhere(stored, d);
      if (stored.state === 'pending')
        return {
          ok: false,
          code: 'ended',
          message: `approval request ${id} is not held by this broker (an earlier broker process left it): nothing changed`,
          request: stored,
        };
      return this.ended(stored);
    }
    const r = live.request;
    if (r.state !== 'pending') return this.ended(copy(r));
    const refused = this.check(r, d);
    if (refused) return refused;
    if (!d.approve) {
      if (!(await this.end(live, 'denied', d.by, d.reason?.trim() || null))) return this.ended(copy(r));
      return { ok: true, request: copy(r) };
    }
    const entry = { by: d.by, at: new Date() };
    r.approvals.push(entry);
    if (r.approvals.length >= r.settings.minApprovals) {
      if (!(await this.end(live, 'approved', d.by, d.reason?.trim() || null))) return this.ended(copy(r));
      return { ok: true, request: copy(r) };
    }
    let counted: boolean;
    try {
      counted = await this.persist(live, this.opts.fleet ? { state: 'pending', approvals: r.approvals.length - 1 } : undefined);
    } catch (e) {
      if (r.state === 'pending') r.approvals = r.approvals.filter((a) => a !== entry);
      throw e;
    }
    if (!counted) {
      // Another replica changed it meanwhile: follow the store, then count this approval on top.
      r.approvals = r.approvals.filter((a) => a !== entry);
      await this.remoteChanged(id);
      return this.decide(id, d);
    }
    this.bus.publish({ type: 'updated', request: copy(r) });
    this.opts.fleet?.changed(r.id);
    return { ok: true, request: copy(r) };
  }

  /** Ends a pending request as cancelled; false when it is not pending here. */
  async cancel(id: string, reason: string): Promise<boolean> {
    const live = this.live.get(id);
    if (live?.request.state !== 'pending') return false;
    await this.end(live, 'cancelled', null, reason);
    return true;
  }

  /** Cancels every pending request of a session (its client went away); returns how many. */
  async cancelSession(sessionId: string, reason: string): Promise<number> {
    const mine = [...this.live.values()].filter((l) => l.request.sessionId === sessionId && l.request.state === 'pending');
    await Promise.all(mine.map((l) => this.end(l, 'cancelled', null, reason)));
    return mine.length;
  }

  /** A request as it is now (held here, or from the store). */
  async get(id: string): Promise<ApprovalRequest | null> {
    const live = this.live.get(id);
    return live ? copy(live.request) : this.opts.store.getApproval(id);
  }

  /** The requests this broker holds a statement for, oldest first. */
  pending(): ApprovalRequest[] {
    return [...this.live.values()]
      .filter((l) => l.request.state === 'pending')
      .map((l) => copy(l.request))
      .sort((a, b) => a.requestedAt.getTime() - b.requestedAt.getTime());
  }

  /** Requests from the store, with the ones held here as they are now. */
  async list(filter: ApprovalFilter = {}): Promise<ApprovalRequest[]> {
    const rows = await this.opts.store.listApprovals(filter);
    return rows
      .map((r) => {
        const live = this.live.get(r.id);
        return live ? copy(live.request) : r;
      })
      .filter((r) => filter.state === undefined || r.state === filter.state);
  }

  /** Where the bot posted the request (to update that message later). Publishes nothing. False when unknown. */
  async setMessage(id: string, ref: { channel: string; ts: string }): Promise<boolean> {
    const live = this.live.get(id);
    // On a fleet, only if nothing changed since (never carry a state over another replica's decision).
    const unchanged = (r: ApprovalRequest): ApprovalExpectation | undefined =>
      this.opts.fleet ? { state: r.state, approvals: r.approvals.length } : undefined;
    if (live) {
      live.request.message = { channel: ref.channel, ts: ref.ts };
      await this.persist(live, unchanged(live.request));
      return true;
    }
    const stored = await this.opts.store.getApproval(id);
    if (!stored) return false;
    return this.opts.store.updateApproval({ ...stored, message: { channel: ref.channel, ts: ref.ts } }, unchanged(stored));
  }

  /** A pending request's blast radius, estimated after it was made: written and published (`updated`). False when it is not pending here. */
  async setEstimate(id: string, estimate: BlastRadius): Promise<boolean> {
    const live = this.live.get(id);
    if (live?.request.state !== 'pending') return false;
    live.request.estimate = estimate;
    if (!(await this.persist(live, this.opts.fleet ? { state: 'pending', approvals: live.request.approvals.length } : undefined))) return false;
    if (live.request.state !== 'pending') return false;
    this.bus.publish({ type: 'updated', request: copy(live.request) });
    return true;
  }

  /** Subscribe to `requested` and `updated` events; returns the unsubscribe function. */
  on(listener: ApprovalListener): () => void {
    return this.bus.subscribe(listener);
  }

  /**
   * At startup, once listeners (the Slack bot) are subscribed: requests an earlier broker process
   * left pending are cancelled ("broker restarted") and an `updated` event is published for each.
   */
  async recoverStale(reason = 'broker restarted'): Promise<ApprovalRequest[]> {
    const stale = await this.opts.store.cancelPendingApprovals(reason, [...this.live.keys()]);
    for (const r of stale) this.bus.publish({ type: 'updated', request: r });
    return stale;
  }

  /**
   * A fleet: ends the pending requests of a replica that died (its lease ran out) as cancelled with `reason`,
   * each exactly once across the survivors, and publishes them (this broker's bot updates their messages).
   */
  async cancelReplica(replicaId: string, reason: string): Promise<number> {
    const cancelled = await this.opts.store.cancelPendingApprovals(reason, [...this.live.keys()], replicaId);
    for (const r of cancelled) {
      this.bus.publish({ type: 'updated', request: r });
      this.opts.fleet?.changed(r.id);
    }
    return cancelled.length;
  }

  /** Cancels what is still pending and refuses new requests. */
  async close(reason = 'the broker is shutting down'): Promise<void> {
    this.closed = true;
    this.unsubscribeFleet();
    await Promise.all([...this.live.values()].map((l) => this.end(l, 'cancelled', null, reason)));
  }

  private ended(r: ApprovalRequest): DecisionResult {
    const by = r.decidedBy ? ` by ${r.decidedBy}` : '';
    const at = r.decidedAt ? ` at ${r.decidedAt.toISOString()}` : '';
    const why = r.reason ? ` (${r.reason})` : '';
    return { ok: false, code: 'ended', message: `approval request ${r.id} already ended: ${r.state}${by}${at}${why}; nothing changed`, request: r };
  }

  private arm(live: Live): void {
    const ms = live.request.expiresAt.getTime() - Date.now();
    live.timer = setTimeout(
      () => {
        if (Date.now() < live.request.expiresAt.getTime()) return this.arm(live);
        void this.end(live, 'expired', null, `no decision within ${formatDuration(live.request.settings.timeoutSeconds)}`);
      },
      Math.max(0, Math.min(ms, MAX_TIMER_MS)),
    );
    live.timer.unref();
  }

  /** Writes the request; with `expect`, only if the store still has it so (false: another replica changed it first). */
  /**
   * Writes the request as it is NOW (not as it is when the queued write runs: a state changed meanwhile is
   * written by the call that changed it, under its own expectation); writes run in call order.
   */
  private persist(live: Live, expect?: ApprovalExpectation): Promise<boolean> {
    const snapshot = copy(live.request);
    const write = live.writes.then(() => this.opts.store.updateApproval(snapshot, expect));
    live.writes = write.then(
      () => {},
      () => {},
    );
    return write;
  }

  /**
   * The one way a request ends: the state changes at once (later decisions see it ended), is
   * written, published, and only then is the waiting statement released. An approval that cannot
   * be recorded does not run the statement: it ends cancelled instead, and the error is rethrown.
   */
  private async end(live: Live, state: Ended, by: string | null, reason: string | null): Promise<boolean> {
    const r = live.request;
    if (r.state !== 'pending') return false;
    // What the store must still hold for this end to be the one that counts (a fleet: another replica may decide too).
    const expect: ApprovalExpectation = { state: 'pending', approvals: r.approvals.length - (state === 'approved' ? 1 : 0) };
    Object.assign(r, { state, decidedBy: by, decidedAt: new Date(), reason });
    if (live.timer) clearTimeout(live.timer);
    live.detach();
    let failure: unknown = null;
    try {
      if (!(await this.persist(live, this.opts.fleet ? expect : undefined))) {
        // Decided on another replica first: that decision stands.
        const stored = await this.opts.store.getApproval(r.id);
        if (stored && stored.state !== 'pending') {
          this.settle(live, stored, true);
          return false;
        }
        Object.assign(r, { state: 'cancelled', reason: 'the request changed on another broker at the same time; run the statement again to ask again' });
        await this.persist(live).catch(() => {});
      }
    } catch (e) {
      failure = e;
      this.opts.log?.('approval request could not be recorded', { approval: r.id, state, error: String(e) });
      if (state === 'approved') {
        Object.assign(r, { state: 'cancelled', reason: `the approval could not be recorded in the audit log (${String(e)}), so the statement was not run` });
        await this.persist(live).catch(() => {});
      }
    }
    this.live.delete(r.id);
    this.bus.publish({ type: 'updated', request: copy(r) });
    this.opts.fleet?.changed(r.id);
    live.resolve(copy(r));
    if (failure && state === 'approved') throw failure;
    return true;
  }

  /** A request held here ended in the store (decided on another replica): release or refuse its statement. */
  private settle(live: Live, stored: ApprovalRequest, remote: boolean): void {
    Object.assign(live.request, {
      state: stored.state,
      approvals: stored.approvals,
      decidedBy: stored.decidedBy,
      decidedAt: stored.decidedAt,
      reason: stored.reason,
      message: stored.message ?? live.request.message,
    });
    if (live.timer) clearTimeout(live.timer);
    live.detach();
    this.live.delete(stored.id);
    this.bus.publish({ type: 'updated', request: copy(live.request), remote });
    live.resolve(copy(live.request));
  }

  /** Another replica changed request `id`: if this broker holds its statement, follow the store. */
  private async remoteChanged(id: string): Promise<void> {
    const live = this.live.get(id);
    if (live?.request.state !== 'pending') return;
    const stored = await this.opts.store.getApproval(id);
    if (!stored || live.request.state !== 'pending') return;
    if (stored.state !== 'pending') return this.settle(live, stored, true);
    if (stored.approvals.length !== live.request.approvals.length) {
      live.request.approvals = stored.approvals;
      if (live.request.approvals.length >= live.request.settings.minApprovals) return; // its decider ends it
      this.bus.publish({ type: 'updated', request: copy(live.request), remote: true });
    }
  }

  /**
   * A decision for a request another replica holds (a fleet): the same checks as for one held here, then a
   * conditional write (it counts only if the request is still as read) and a notice to the holder.
   */
  private async decideElsewhere(stored: ApprovalRequest, d: DecisionInput, attempt = 0): Promise<DecisionResult> {
    const r = copy(stored);
    const refused = this.check(r, d);
    if (refused) return refused;
    const expect: ApprovalExpectation = { state: 'pending', approvals: r.approvals.length };
    const now = new Date();
    if (!d.approve) Object.assign(r, { state: 'denied', decidedBy: d.by, decidedAt: now, reason: d.reason?.trim() || null });
    else {
      r.approvals.push({ by: d.by, at: now });
      if (r.approvals.length >= r.settings.minApprovals)
        Object.assign(r, { state: 'approved', decidedBy: d.by, decidedAt: now, reason: d.reason?.trim() || null });
    }
    if (!(await this.opts.store.updateApproval(r, expect))) {
      const again = await this.opts.store.getApproval(r.id);
      if (!again) return { ok: false, code: 'not_found', message: `no approval request '${r.id}'` };
      if (again.state !== 'pending' || attempt > 3) return this.ended(again);
      return this.decideElsewhere(again, d, attempt + 1); // another approval landed meanwhile: count this one on top
    }
    this.bus.publish({ type: 'updated', request: copy(r) });
    this.opts.fleet?.changed(r.id);
    return { ok: true, request: r };
  }

  /** Why a person's decision does not count for `r` (pending), or null when it does. */
  private check(r: ApprovalRequest, d: DecisionInput): DecisionResult | null {
    if (!d.trusted && !isListedApprover(r.settings.approvers, d))
      return {
        ok: false,
        code: 'not_approver',
        message: `${d.by} is not among the approvers of this request (${r.settings.approvers.join(', ')})`,
        request: copy(r),
      };
    if (!d.approve) return null;
    if (isOwnRequest(r, d)) return { ok: false, code: 'own_request', message: 'you cannot approve your own request: ask another approver', request: copy(r) };
    const who = d.by.trim().toLowerCase();
    if (r.approvals.some((a) => a.by.trim().toLowerCase() === who))
      return {
        ok: false,
        code: 'already_approved',
        message: `${d.by} has already approved this request; it needs ${r.settings.minApprovals} distinct approvers`,
        request: copy(r),
      };
    return null;
  }
}
