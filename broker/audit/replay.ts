// A recorded session as a list of events, in the order things happened: who connected, each statement
// with its decision, its approval and its result (with the sample of what the client saw), the end.
// `jit replay --json` prints them one per line and GET /api/sessions/:id/events serves them as an array:
// their shapes are a stable interface (documented in the README), extended only by adding fields.
import type { ApprovalRequest } from '../approvals/types.js';
import type { NewStatement, SessionSummary, StatementRecord, Store } from '../store/index.js';
import type { ResultSample } from './types.js';

/** Who connected, from where, how. */
export interface SessionStartEvent {
  type: 'session-start';
  session: string;
  /** ISO 8601. */
  at: string;
  target: string;
  engine: 'postgres' | 'mysql';
  identity: { subject: string; issuer: string; build: string | null; claims: Record<string, unknown>; actors: string[]; tokenId: string | null };
  client: { address: string; port: number; application: string | null; user: string | null; tls: boolean };
  /** The database role the session ran as (targets.<name>.session_roles), or null: the broker's own account. */
  dbRole: string | null;
}

/** A statement as recorded before it ran (or was refused); `message`: why it was refused or held (null when allowed). */
export interface StatementEvent extends Pick<NewStatement, 'sql' | 'protocol' | 'kinds' | 'decision' | 'ruleId' | 'message'> {
  type: 'statement';
  session: string;
  seq: number;
  statementId: number;
  at: string;
  /** Milliseconds from the session's start. */
  offsetMs: number;
}

/** The approval request that held the statement, or the session-scope approval it ran under (`reused`). */
export interface ApprovalEvent {
  type: 'approval';
  session: string;
  seq: number;
  statementId: number;
  approvalId: string;
  state: ApprovalRequest['state'];
  ruleId: string | null;
  requestedAt: string;
  decidedAt: string | null;
  /** decidedAt from the session's start (null while undecided). */
  offsetMs: number | null;
  decidedBy: string | null;
  reason: string | null;
  approvals: { by: string; at: string }[];
  minApprovals: number;
  scope: 'statement' | 'session';
  /** The approval was given to an earlier statement of this session (`scope: session`), not asked again. */
  reused: boolean;
}

/** What happened upstream: only for a statement that ran and whose outcome was recorded. */
export interface ResultEvent {
  type: 'result';
  session: string;
  seq: number;
  statementId: number;
  durationMs: number;
  tag: string | null;
  rows: number | null;
  error: string | null;
  /** What the client saw of the result, already masked; null when no sample was kept. */
  sample: ResultSample | null;
}

/** Present once the session ended. */
export interface SessionEndEvent {
  type: 'session-end';
  session: string;
  at: string;
  offsetMs: number;
  reason: string | null;
  statements: number;
  allowed: number;
  denied: number;
  reviewed: number;
}

export type ReplayEvent = SessionStartEvent | StatementEvent | ApprovalEvent | ResultEvent | SessionEndEvent;

export interface Replay {
  session: SessionSummary;
  statements: StatementRecord[];
  approvals: Map<string, ApprovalRequest>;
  samples: Map<number, ResultSample>;
}

/** Everything recorded of a session (by id or unique prefix); null when none matches. Rejects on an ambiguous prefix. */
export async function loadReplay(store: Store, idOrPrefix: string): Promise<Replay | null> {
  const session = await store.getSession(idOrPrefix);
  if (!session) return null;
  const [statements, samples] = await Promise.all([store.listStatements(session.id), store.listSamples(session.id)]);
  const approvals = new Map<string, ApprovalRequest>();
  for (const id of new Set(statements.flatMap((s) => (s.approvalId ? [s.approvalId] : [])))) {
    const a = await store.getApproval(id);
    if (a) approvals.set(id, a);
  }
  return { session, statements, approvals, samples };
}

export function replayEvents(r: Replay): ReplayEvent[] {
  const s = r.session;
  const start = s.startedAt.getTime();
  const iso = (d: Date) => d.toISOString();
  const events: ReplayEvent[] = [
    {
      type: 'session-start',
      session: s.id,
      at: iso(s.startedAt),
      target: s.target,
      engine: s.engine,
      identity: { subject: s.subject, issuer: s.issuer, build: s.build, claims: s.claims, actors: s.actors, tokenId: s.tokenId },
      client: { address: s.clientAddress, port: s.clientPort, application: s.clientApplication, user: s.dbUser, tls: s.tls },
      dbRole: s.dbRole ?? null,
    },
  ];
  for (const st of r.statements) {
    const ref = { session: s.id, seq: st.seq, statementId: st.id };
    events.push({
      type: 'statement',
      ...ref,
      at: iso(st.startedAt),
      offsetMs: st.startedAt.getTime() - start,
      sql: st.sql,
      protocol: st.protocol,
      kinds: st.kinds,
      decision: st.decision,
      ruleId: st.ruleId,
      message: st.message,
    });
    const a = st.approvalId ? r.approvals.get(st.approvalId) : undefined;
    if (a) {
      events.push({
        type: 'approval',
        ...ref,
        approvalId: a.id,
        state: a.state,
        ruleId: a.ruleId,
        requestedAt: iso(a.requestedAt),
        decidedAt: a.decidedAt ? iso(a.decidedAt) : null,
        offsetMs: a.decidedAt ? a.decidedAt.getTime() - start : null,
        decidedBy: a.decidedBy,
        reason: a.reason,
        approvals: a.approvals.map((x) => ({ by: x.by, at: iso(x.at) })),
        minApprovals: a.settings.minApprovals,
        scope: a.settings.scope,
        reused: a.statementId !== null && a.statementId !== st.id,
      });
    }
    if (st.durationMs !== null) {
      events.push({ type: 'result', ...ref, durationMs: st.durationMs, tag: st.tag, rows: st.rows, error: st.error, sample: r.samples.get(st.id) ?? null });
    }
  }
  if (s.endedAt) {
    events.push({
      type: 'session-end',
      session: s.id,
      at: iso(s.endedAt),
      offsetMs: s.endedAt.getTime() - start,
      reason: s.endReason,
      statements: s.statementCount,
      allowed: s.allowed,
      denied: s.denied,
      reviewed: s.reviewed,
    });
  }
  return events;
}

/**
 * Emits the events as they happened: before each statement, waits its gap from the one before (from the
 * session's start for the first) divided by `speed`; `speed` 0 emits everything at once.
 */
export async function playEvents(
  events: readonly ReplayEvent[],
  speed: number,
  emit: (e: ReplayEvent) => void,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<void> {
  let last = 0;
  for (const e of events) {
    if (e.type === 'statement' && speed > 0) {
      const gap = (e.offsetMs - last) / speed;
      if (gap >= 1) await sleep(gap);
      last = e.offsetMs;
    }
    emit(e);
  }
}
