// `jit policy apply FILE --dry-run`: the recorded statements of a window decided again under other rules, and
// what would change. Pure: given sessions and their statements as the store keeps them and a PolicyConfig, it
// returns the changes; reading the store (dry-run-history.ts) and the catalog is the caller's business.
//
// Each statement is classified again for its target's engine, read in its session's order as the broker read it
// (a PostgreSQL `EXECUTE q` is what the session prepared as q; a MySQL statement sees the user variables and
// prepared statements set before it), optionally refined against a catalog, and decided for the identity recorded
// on its session (subject, issuer, build, claims, delegation chain). What the broker decided outside the rules
// (the engine's containment, `broker:confine`; a revocation) is not a policy decision: counted apart.
import type { SessionSummary, StatementRecord } from '../store/types.js';
import { PostgresSessionState } from '../session-postgres.js';
import { MysqlSessionState } from '../session-mysql.js';
import type { Action, Classification, Decision, Identity, Kind } from '../types.js';
import { classify, decide, mostSevere, type PolicyConfig } from './index.js';

/** One recorded session and the statements of it to decide again (in seq order; the whole session, for its state). */
export interface RecordedSession {
  session: SessionSummary;
  statements: StatementRecord[];
  /** Statements before this time are read (they set the session's state) but not counted. */
  from?: Date;
}

export interface DecisionRef {
  action: Action;
  /** The rule, or null for the default. */
  ruleId: string | null;
}

export interface DryRunExample {
  sessionId: string;
  statementId: number;
  target: string;
  subject: string;
  build: string | null;
  at: string;
  /** The statement's text, white space folded, cut at 160 characters. */
  sql: string;
  kinds: Kind[];
  /** The policy version that decided it, as recorded (null: before policy versions were recorded). */
  policyVersion: number | null;
}

export interface DryRunChange {
  from: DecisionRef;
  to: DecisionRef;
  count: number;
  /** How many of them by most severe kind, and by build (`(none)` for a token without one) and kind: for CI gates. */
  kinds: Partial<Record<Kind, number>>;
  builds: Record<string, Partial<Record<Kind, number>>>;
  examples: DryRunExample[];
}

export interface DryRunReport {
  /** Statements decided again. */
  considered: number;
  unchanged: number;
  changed: number;
  /** Recorded decisions that were not the rules' (containment, revocation), by their rule: not decided again. */
  skipped: Record<string, number>;
  /** Most changes first. */
  changes: DryRunChange[];
}

export interface DryRunOptions {
  /** Examples kept per change (default 5). */
  examples?: number;
  /** A classification refined against the target's catalog (the caller read it); absent: by names alone. */
  refine?: (target: string, engine: 'postgres' | 'mysql', c: Classification) => Classification;
}

/** `allow(day-to-day)`, `deny(default)`. */
export const label = (d: DecisionRef): string => `${d.action}(${d.ruleId ?? 'default'})`;

/** Why a recorded decision is not the rules' own, or null when it is. */
function outsideRules(st: StatementRecord): string | null {
  if (st.ruleId?.startsWith('broker:')) return st.ruleId;
  if (st.ruleId === null && st.decision === 'deny' && st.message?.startsWith('revoked:')) return 'broker:revoked';
  return null;
}

function identityOf(s: SessionSummary): Identity {
  return {
    subject: s.subject,
    issuer: s.issuer,
    build: s.build,
    claims: s.claims,
    actors: s.actors,
    tokenId: s.tokenId,
    // Expiry plays no part in a decision; the session was open when its statements were decided.
    expiresAt: new Date(8.64e15),
  };
}

/** The session's own reading of its statements, as the broker's session core keeps it (see broker/session.ts). */
interface Reader {
  read(st: StatementRecord): { classification: Classification; after: (d: Decision) => void };
}

function reader(engine: 'postgres' | 'mysql'): Reader {
  if (engine === 'mysql') {
    const state = new MysqlSessionState();
    return {
      read(st) {
        const { classification, changes } = state.classify(st.sql);
        return {
          classification,
          after(d) {
            state.decided(d, changes, false);
            // What it set counts only if it ran: the recorded history, not the new decision, says so.
            if (ran(st)) {
              state.admitted(d, { sql: st.sql, protocol: st.protocol }, st.id);
              state.completed(st.id, st.error === null);
            }
          },
        };
      },
    };
  }
  const state = new PostgresSessionState();
  return {
    read(st) {
      const s = state.substitute(classify('postgres', st.sql));
      return {
        classification: s.classification,
        after(d) {
          state.decided(d, s);
          if (ran(st)) {
            state.admitted(d, { sql: st.sql, protocol: st.protocol }, st.id);
            state.completed(st.id, st.error === null);
          }
        },
      };
    },
  };
}

/** Whether the recorded statement went upstream (it has an outcome). */
const ran = (st: StatementRecord): boolean => st.durationMs !== null || st.tag !== null || st.error !== null;

const fold = (sql: string): string => {
  const s = sql.replace(/\s+/g, ' ').trim();
  return s.length > 160 ? `${s.slice(0, 159)}…` : s;
};

/** Decide the recorded statements again under `policy` and say which decisions would change. */
export function dryRun(policy: PolicyConfig, history: readonly RecordedSession[], opts: DryRunOptions = {}): DryRunReport {
  const keep = opts.examples ?? 5;
  const changes = new Map<string, DryRunChange>();
  const skipped: Record<string, number> = {};
  let considered = 0;
  let changed = 0;
  for (const { session, statements, from } of history) {
    const identity = identityOf(session);
    const read = reader(session.engine);
    for (const st of statements) {
      const counted = !from || st.startedAt >= from;
      const { classification, after } = read.read(st);
      const c = opts.refine ? opts.refine(session.target, session.engine, classification) : classification;
      const d = decide(policy, identity, session.target, c);
      after(d);
      if (!counted) continue;
      const outside = outsideRules(st);
      if (outside) {
        skipped[outside] = (skipped[outside] ?? 0) + 1;
        continue;
      }
      considered++;
      if (d.action === st.decision && d.ruleId === st.ruleId) continue;
      changed++;
      const was: DecisionRef = { action: st.decision, ruleId: st.ruleId };
      const now: DecisionRef = { action: d.action, ruleId: d.ruleId };
      const key = `${label(was)} → ${label(now)}`;
      let ch = changes.get(key);
      if (!ch) changes.set(key, (ch = { from: was, to: now, count: 0, builds: {}, kinds: {}, examples: [] }));
      ch.count++;
      const kind = mostSevere(d.kinds);
      ch.kinds[kind] = (ch.kinds[kind] ?? 0) + 1;
      const build = (ch.builds[session.build ?? '(none)'] ??= {});
      build[kind] = (build[kind] ?? 0) + 1;
      if (ch.examples.length < keep)
        ch.examples.push({
          sessionId: session.id,
          statementId: st.id,
          target: session.target,
          subject: session.subject,
          build: session.build,
          at: st.startedAt.toISOString(),
          sql: fold(st.sql),
          kinds: d.kinds,
          policyVersion: st.policyVersion ?? null,
        });
    }
  }
  const list = [...changes.values()].sort((a, b) => b.count - a.count || label(a.from).localeCompare(label(b.from)));
  return { considered, unchanged: considered - changed, changed, skipped, changes: list };
}
