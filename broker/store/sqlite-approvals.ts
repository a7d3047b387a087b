// Approval requests in the embedded SQLite store. Few and far between next to statements, so plain
// drizzle queries, no group commit. SqliteStore delegates its approval methods here.
import { and, asc, desc, eq, inArray, notInArray, sql, type SQL } from 'drizzle-orm';
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import type { ApprovalFilter, ApprovalRequest } from '../approvals/types.js';
import { approvals, sessions, statements } from './schema.sqlite.js';
import { mutable, toRequest } from './approval-rows.js';
import type { ApprovalExpectation } from './types.js';

export class SqliteApprovals {
  constructor(
    private readonly db: BetterSQLite3Database,
    /** Lands queued statement records first (a request links to its statement's row). */
    private readonly flush: () => void,
  ) {}

  async create(r: ApprovalRequest): Promise<void> {
    this.flush();
    this.db.transaction((tx) => {
      tx.insert(approvals)
        .values({
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
        })
        .run();
      if (r.statementId !== null) tx.update(statements).set({ approvalId: r.id }).where(eq(statements.id, r.statementId)).run();
    });
  }

  async update(r: ApprovalRequest, expect?: ApprovalExpectation): Promise<boolean> {
    const where = expect
      ? and(
          eq(approvals.id, r.id),
          eq(approvals.state, expect.state),
          expect.approvals !== undefined ? sql`json_array_length(${approvals.approvals}) = ${expect.approvals}` : undefined,
        )
      : eq(approvals.id, r.id);
    const { changes } = this.db.update(approvals).set(mutable(r)).where(where).run();
    if (changes > 0) return true;
    if (expect && this.db.select({ id: approvals.id }).from(approvals).where(eq(approvals.id, r.id)).all().length) return false;
    throw new Error(`store: cannot update unknown approval request ${r.id}`);
  }

  async get(id: string): Promise<ApprovalRequest | null> {
    const [row] = this.db.select().from(approvals).where(eq(approvals.id, id)).all();
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
    if (f.limit === undefined) return query.orderBy(asc(approvals.requestedAt), asc(approvals.id)).all().map(toRequest);
    // The most recent `limit`, still returned oldest first.
    const rows = query.orderBy(desc(approvals.requestedAt), desc(approvals.id)).limit(Math.max(0, f.limit)).all();
    return rows.reverse().map(toRequest);
  }

  async cancelPending(reason: string, except: readonly string[] = [], replicaId?: string): Promise<ApprovalRequest[]> {
    const at = new Date();
    return this.db.transaction((tx) => {
      const pending = and(
        eq(approvals.state, 'pending'),
        except.length ? notInArray(approvals.id, [...except]) : undefined,
        replicaId !== undefined
          ? inArray(approvals.sessionId, tx.select({ id: sessions.id }).from(sessions).where(eq(sessions.replicaId, replicaId)))
          : undefined,
      );
      const ids = tx
        .select({ id: approvals.id })
        .from(approvals)
        .where(pending)
        .all()
        .map((r) => r.id);
      if (!ids.length) return [];
      tx.update(approvals).set({ state: 'cancelled', decidedAt: at, reason }).where(inArray(approvals.id, ids)).run();
      return tx.select().from(approvals).where(inArray(approvals.id, ids)).orderBy(asc(approvals.requestedAt)).all().map(toRequest);
    });
  }
}
