// Prometheus metrics (GET /metrics): one Metrics per broker, owning its own prom-client Registry (never the
// global one, so several brokers in one process — tests — do not collide). The rooms that count are handed it
// through small explicit hooks (the session core, the login audit, the engines' upstream connect, the
// approvals bus). Labels are kept low-cardinality: targets, engines, decisions, kinds, rule ids and reasons
// from the config and the code — never a statement text, a token, a session id or a subject.
import { hostname } from 'node:os';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { buildInfo } from '../version.js';
import type { ApprovalEvent, ApprovalState } from '../approvals/types.js';
import type { LoginRefusalReason } from '../audit/logins.js';
import type { Decision, Target } from '../types.js';
import { journalLagBytes, type JournalProbe } from './journal.js';

export type { JournalProbe } from './journal.js';

/** Why the session core refused a statement (`jit_refusals_total{reason}`). */
export type RefusalReason =
  /** A deny: a rule, the default, or the broker's own (`broker:confine`, …). */
  | 'policy'
  /** The token was revoked since login. */
  | 'revoked'
  /** A review with nobody to decide it (no admin_token, no Slack). */
  | 'no_approvers'
  /** The statement (or its approval request) could not be recorded first. */
  | 'audit'
  | 'approval_denied'
  | 'approval_expired'
  | 'approval_cancelled'
  /** The session ended before the request was made, or while it was pending. */
  | 'session_ended';

/** What the session core counts (broker/session.ts). */
export interface SessionMetrics {
  /** A statement decided and recorded: counted once per kind it has. */
  statement(target: string, decision: Decision, rule: string): void;
  refused(target: string, reason: RefusalReason): void;
  loginAccepted(engine: Target['engine']): void;
  sessionOpened(target: string): void;
  sessionClosed(target: string): void;
}

/** The part of the approvals an observer may use: its bus's events (Approvals.on). */
export interface ApprovalsSource {
  on(listener: (e: ApprovalEvent) => void): () => void;
}

/** Seconds from a request to its decision: from a quick click to a day-long timeout. */
const WAIT_BUCKETS = [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 14400, 86400];

/** Label children by two, or four, label values: looked up in nested maps, so counting allocates nothing once seen. */
class Children2<C> {
  private readonly m = new Map<string, Map<string, C>>();
  constructor(private readonly make: (a: string, b: string) => C) {}
  get(a: string, b: string): C {
    let l = this.m.get(a);
    if (!l) this.m.set(a, (l = new Map()));
    let c = l.get(b);
    if (!c) l.set(b, (c = this.make(a, b)));
    return c;
  }
}

class Children4<C> {
  private readonly m = new Map<string, Map<string, Map<string, Map<string, C>>>>();
  constructor(private readonly make: (a: string, b: string, c: string, d: string) => C) {}
  get(a: string, b: string, c: string, d: string): C {
    let la = this.m.get(a);
    if (!la) this.m.set(a, (la = new Map()));
    let lb = la.get(b);
    if (!lb) la.set(b, (lb = new Map()));
    let lc = lb.get(c);
    if (!lc) lb.set(c, (lc = new Map()));
    let child = lc.get(d);
    if (!child) lc.set(d, (child = this.make(a, b, c, d)));
    return child;
  }
}

export interface MetricsOptions {
  /** The `replica` label of open sessions: the config's replica id, else this host's name. */
  replica?: string;
  /** prom-client's process metrics (CPU, memory, event loop lag, GC). Default true. */
  processMetrics?: boolean;
}

export class Metrics implements SessionMetrics {
  readonly registry = new Registry();
  readonly replica: string;
  private readonly statements: Counter<'target' | 'decision' | 'kind' | 'rule'>;
  private readonly refusals: Counter<'target' | 'reason'>;
  private readonly logins: Counter<'engine' | 'result' | 'reason'>;
  private readonly sessions: Gauge<'target' | 'replica'>;
  private readonly upstreamErrors: Counter<'target' | 'engine'>;
  private readonly approvalsTotal: Counter<'outcome'>;
  private readonly approvalWait: Histogram;
  private readonly statementChildren: Children4<{ inc(): void }>;
  private readonly refusalChildren: Children2<{ inc(): void }>;
  private readonly sessionChildren = new Map<string, ReturnType<Gauge<'target' | 'replica'>['labels']>>();
  /** Requests seen `requested` and not yet ended: id → when requested (ms). */
  private readonly pending = new Map<string, number>();
  private journal: JournalProbe | null = null;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(opts: MetricsOptions = {}) {
    this.replica = opts.replica ?? hostname();
    const registers = [this.registry];
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.statements = new Counter({
      name: 'jit_statements_total',
      help: 'Statements decided and recorded, by target, decision (allow, deny, review), kind and rule (the rule id; "default" when no rule matched). A statement of several kinds counts once per kind: sum over one kind, not over all, to count statements.',
      labelNames: ['target', 'decision', 'kind', 'rule'],
      registers,
    });
    this.statementChildren = new Children4((target, decision, rule, kind) => this.statements.labels({ target, decision, rule, kind }));
    this.refusals = new Counter({
      name: 'jit_refusals_total',
      help: 'Statements refused, by target and reason: policy (a deny), revoked, no_approvers, audit (not recorded, so not run), approval_denied, approval_expired, approval_cancelled, session_ended.',
      labelNames: ['target', 'reason'],
      registers,
    });
    this.refusalChildren = new Children2((target, reason) => this.refusals.labels({ target, reason }));
    this.logins = new Counter({
      name: 'jit_logins_total',
      help: 'Logins to the database listeners, by engine and result (accepted, refused); a refusal by reason (bad_signature, expired, unknown_target, tls_required, ...).',
      labelNames: ['engine', 'result', 'reason'],
      registers,
    });
    this.sessions = new Gauge({
      name: 'jit_sessions_open',
      help: 'Client sessions open now on this broker, by target and replica.',
      labelNames: ['target', 'replica'],
      registers,
    });
    this.upstreamErrors = new Counter({
      name: 'jit_upstream_connect_errors_total',
      help: "Logins the broker accepted but could not connect (or log in) to the target's database for, by target and engine.",
      labelNames: ['target', 'engine'],
      registers,
    });
    const build = buildInfo();
    new Gauge({
      name: 'jit_build_info',
      help: 'Always 1: the version and commit this broker runs (commit "unknown" when it was built without one).',
      labelNames: ['version', 'commit'],
      registers,
    }).set({ version: build.version, commit: build.commit ?? 'unknown' }, 1);
    const pending = this.pending;
    new Gauge({
      name: 'jit_approvals_pending',
      help: 'Approval requests waiting for a decision now (statements held for review).',
      registers,
      collect() {
        this.set(pending.size);
      },
    });
    this.approvalWait = new Histogram({
      name: 'jit_approval_wait_seconds',
      help: 'Seconds from an approval request to its end (approved, denied, expired or cancelled).',
      buckets: WAIT_BUCKETS,
      registers,
    });
    this.approvalsTotal = new Counter({
      name: 'jit_approvals_total',
      help: 'Approval requests ended, by outcome: approved, denied, expired, cancelled.',
      labelNames: ['outcome'],
      registers,
    });
    const self = this;
    new Gauge({
      name: 'jit_journal_lag_bytes',
      help: "Bytes of the audit journal written but not yet reported in the store by its indexer (the store's lag behind the journal).",
      registers,
      collect() {
        if (self.journal) this.set(journalLagBytes(self.journal));
      },
    });
    new Counter({
      name: 'jit_journal_written_bytes_total',
      help: 'Bytes this broker appended to the audit journal.',
      registers,
      collect() {
        if (!self.journal) return;
        this.reset();
        this.inc(self.journal.stats.bytes);
      },
    });
    new Counter({
      name: 'jit_journal_write_failures_total',
      help: 'Writes to the audit journal that failed (their statements were refused).',
      registers,
      collect() {
        if (!self.journal) return;
        this.reset();
        this.inc(self.journal.stats.failures);
      },
    });
  }

  /** The series that exist before anything happens: each target's open sessions at 0, outcomes at 0. */
  targets(targets: Iterable<Target>): this {
    for (const t of targets) this.sessionChild(t.name);
    for (const o of ['approved', 'denied', 'expired', 'cancelled'] satisfies ApprovalState[]) this.approvalsTotal.labels({ outcome: o }).inc(0);
    return this;
  }

  /**
   * Watch the approvals bus: the requests this broker holds (made here: `requested`), their wait and their
   * outcome. A request another replica holds is counted there, not here, so a fleet's sum counts each once.
   */
  observeApprovals(approvals: ApprovalsSource): this {
    this.unsubscribe.push(approvals.on((e) => this.approvalEvent(e)));
    return this;
  }

  /** The audit journal whose lag behind the store is reported. */
  observeJournal(journal: JournalProbe): this {
    this.journal = journal;
    return this;
  }

  private approvalEvent(e: ApprovalEvent): void {
    const r = e.request;
    if (e.type === 'requested') {
      if (r.state === 'pending') this.pending.set(r.id, r.requestedAt.getTime());
      return;
    }
    if (r.state === 'pending') return; // one more approval of several: still held
    const since = this.pending.get(r.id);
    // Only requests seen made: an `updated` of a request ended earlier (a restart's clean-up) is not a wait.
    if (since === undefined) return;
    this.pending.delete(r.id);
    this.approvalsTotal.labels({ outcome: r.state }).inc();
    this.approvalWait.observe(Math.max(0, ((r.decidedAt?.getTime() ?? Date.now()) - since) / 1000));
  }

  statement(target: string, decision: Decision, rule: string): void {
    for (const kind of decision.kinds) this.statementChildren.get(target, decision.action, rule, kind).inc();
  }

  refused(target: string, reason: RefusalReason): void {
    this.refusalChildren.get(target, reason).inc();
  }

  loginAccepted(engine: Target['engine']): void {
    this.logins.labels({ engine, result: 'accepted' }).inc();
  }

  loginRefused(engine: Target['engine'], reason: LoginRefusalReason): void {
    this.logins.labels({ engine, result: 'refused', reason }).inc();
  }

  sessionOpened(target: string): void {
    this.sessionChild(target).inc();
  }

  sessionClosed(target: string): void {
    this.sessionChild(target).dec();
  }

  upstreamConnectFailed(target: Target): void {
    this.upstreamErrors.labels({ target: target.name, engine: target.engine }).inc();
  }

  private sessionChild(target: string) {
    let c = this.sessionChildren.get(target);
    if (!c) {
      c = this.sessions.labels({ target, replica: this.replica });
      c.set(0);
      this.sessionChildren.set(target, c);
    }
    return c;
  }

  /** The exposition: Prometheus text format. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  close(): void {
    for (const u of this.unsubscribe.splice(0)) u();
  }
}
