// Sessions as both store dialects write and read them: a new session flattened into its columns (both
// dialects' createSession, the audit journal's `open` event), a SessionFilter as WHERE conditions, and the
// per-decision counts added to a listing. Dialect-free: drizzle's operators take either schema's columns.
import { eq, gte, isNotNull, isNull, type Column, type SQL } from 'drizzle-orm';
import type { NewSession, SessionFilter, SessionSummary } from './types.js';

export function sessionValues(id: string, s: NewSession) {
  const { identity: who, client } = s;
  return {
    id,
    target: s.target,
    engine: s.engine,
    subject: who.subject,
    issuer: who.issuer,
    build: who.build,
    claims: who.claims,
    actors: who.actors,
    tokenId: who.tokenId,
    clientAddress: client.address,
    clientPort: client.port,
    clientApplication: client.application,
    dbUser: client.user,
    tls: client.tls,
    startedAt: s.startedAt,
    replicaId: s.replicaId ?? null,
    dbRole: s.dbRole ?? null,
  };
}

/** The columns a SessionFilter looks at, in either dialect's `sessions` table. */
interface FilteredColumns {
  build: Column;
  subject: Column;
  target: Column;
  endedAt: Column;
  startedAt: Column;
}

/** A listing's filter as the conditions of its WHERE (all of them must hold). */
export function sessionFilterWhere(t: FilteredColumns, filter: SessionFilter): SQL[] {
  const where: SQL[] = [];
  if (filter.build !== undefined) where.push(eq(t.build, filter.build));
  if (filter.subject !== undefined) where.push(eq(t.subject, filter.subject));
  if (filter.target !== undefined) where.push(eq(t.target, filter.target));
  if (filter.open === true) where.push(isNull(t.endedAt));
  if (filter.open === false) where.push(isNotNull(t.endedAt));
  if (filter.since !== undefined) where.push(gte(t.startedAt, filter.since));
  return where;
}

type Counts = Pick<SessionSummary, 'statementCount' | 'allowed' | 'denied' | 'reviewed'>;

/** Sessions with their statement count and per-decision counts, from `count(*)` grouped by session and decision. */
export function withDecisionCounts(
  rows: readonly Omit<SessionSummary, keyof Counts>[],
  grouped: Iterable<{ sessionId: string; decision: string; n: number }>,
): SessionSummary[] {
  const counts = new Map<string, Counts>();
  for (const row of rows) counts.set(row.id, { statementCount: 0, allowed: 0, denied: 0, reviewed: 0 });
  for (const g of grouped) {
    const c = counts.get(g.sessionId);
    if (!c) continue;
    c.statementCount += g.n;
    if (g.decision === 'allow') c.allowed = g.n;
    else if (g.decision === 'deny') c.denied = g.n;
    else if (g.decision === 'review') c.reviewed = g.n;
  }
  return rows.map((row) => ({ ...row, ...counts.get(row.id)! }));
}
