// Approval requests in the PostgreSQL store: plain drizzle queries, as in sqlite-approvals.ts (whose
// semantics these keep). PgStore delegates its approval methods here.
import { and, asc, desc, eq, inArray, notInArray, sql, type SQL } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { ApprovalFilter, ApprovalRequest } from '../approvals/types.js';
import { approvals, sessions, statements } from './schema.pg.js';
import { mutable, toRequest } from './approval-rows.js';
import type { ApprovalExpectation } from './types.js';

export class PgApprovals {
  constructor(
    private readonly db: NodePgDatabase,
    /** Lands queued statement records first (a request links to its statement's row). */
    private readonly settle: () => Promise<void>,
  ) {}

  async create(r: ApprovalRequest): Promise<void> {
    await this.settle();
    await this.db.transaction(async (tx) => {
      await tx.insert(approvals).values({
        id: r.id,
        target: r.target,
        sessionId: r.sessionId,
        statementId: r.statementId,
        subject: r.subject,
        build: r.build,
        claims: r.claims,
        actors: r.actors,
        sql: r.sql,
        kinds: r.kinds,
        ruleId: r.ruleId,
        settings: r.settings,
        requestedAt: r.requestedAt,
        expiresAt: r.expiresAt,
        policyVersion: r.policyVersion ?? null,
        ...mutable(r),
      });
      if (r.statementId !== null) await tx.update(statements).set({ approvalId: r.id }).where(eq(statements.id, r.statementId));
    });
  }

  async update(r: ApprovalRequest, expect?: ApprovalExpectation): Promise<boolean> {
    // One conditional UPDATE: of two replicas deciding the same request at once, one writes.
    const where = expect
      ? and(
          eq(approvals.id, r.id),
          eq(approvals.state, expect.state),
          expect.approvals !== undefined ? sql`jsonb_array_length(${approvals.approvals}) = ${expect.approvals}` : undefined,
        )
      : eq(approvals.id, r.id);
    const { rowCount } = await this.db.update(approvals).set(mutable(r)).where(where);
    if (rowCount) return true;
    if (expect && (await this.db.select({ id: approvals.id }).from(approvals).where(eq(approvals.id, r.id))).length) return false;
    throw new Error(`store: cannot update unknown approval request ${r.id}`);
  }

  async get(id: string): Promise<ApprovalRequest | null> {
    const [row] = await this.db.select().from(approvals).where(eq(approvals.id, id));
    return row ? toRequest(row) : null;
  }

  async list(f: ApprovalFilter): Promise<ApprovalRequest[]> {
    const where: SQL[] = [];
    if (f.state !== undefined) where.push(eq(approvals.state, f.state));
    if (f.sessionId !== undefined) where.push(eq(approvals.sessionId, f.sessionId));
    if (f.build !== undefined) where.push(eq(approvals.build, f.build));
    const query = this.db
      .select()
      .from(approvals)
      .where(and(...where));
    if (f.limit === undefined) return (await query.orderBy(asc(approvals.requestedAt), asc(approvals.id))).map(toRequest);
    // The most recent `limit`, still returned oldest first.
    const rows = await query.orderBy(desc(approvals.requestedAt), desc(approvals.id)).limit(Math.max(0, f.limit));
    return rows.reverse().map(toRequest);
  }

  async cancelPending(reason: string, except: readonly string[] = [], replicaId?: string): Promise<ApprovalRequest[]> {
    const at = new Date();
    // One conditional UPDATE: a request another replica decides meanwhile is not cancelled over its decision.
    const pending = and(
      eq(approvals.state, 'pending'),
      except.length ? notInArray(approvals.id, [...except]) : undefined,
      replicaId !== undefined
        ? inArray(approvals.sessionId, this.db.select({ id: sessions.id }).from(sessions).where(eq(sessions.replicaId, replicaId)))
        : undefined,
    );
    const rows = await this.db.update(approvals).set({ state: 'cancelled', decidedAt: at, reason }).where(pending).returning();
    return rows.sort((a, b) => a.requestedAt.getTime() - b.requestedAt.getTime()).map(toRequest);
  }
}
