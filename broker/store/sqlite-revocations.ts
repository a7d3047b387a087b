// Revocations and single-use token ids in the embedded SQLite store (issue 7). Rare writes next to
// statements: plain drizzle queries, no group commit. SqliteStore delegates its revocation methods here.
import { and, asc, desc, eq, gt, isNull, lt, type SQL } from 'drizzle-orm';
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import type { NewRevocation, Revocation, RevocationFilter, TokenUse } from './types.js';
import { revocations, tokenUses } from './schema.sqlite.js';

export class SqliteRevocations {
  constructor(private readonly db: BetterSQLite3Database) {}

  async add(r: NewRevocation): Promise<Revocation> {
    if (!r.build && !r.jti) throw new Error('store: a revocation names a build or a jti');
    const [row] = this.db
      .insert(revocations)
      .values({ build: r.build, jti: r.jti, reason: r.reason, revokedBy: r.revokedBy, revokedAt: r.revokedAt })
      .returning()
      .all();
    return row!;
  }

  async list(f: RevocationFilter = {}): Promise<Revocation[]> {
    const where: SQL[] = [];
    if (f.build !== undefined) where.push(eq(revocations.build, f.build));
    if (f.jti !== undefined) where.push(eq(revocations.jti, f.jti));
    if (f.afterId !== undefined) where.push(gt(revocations.id, f.afterId));
    const query = this.db
      .select()
      .from(revocations)
      .where(and(...where));
    if (f.limit === undefined) return query.orderBy(asc(revocations.id)).all();
    return query.orderBy(desc(revocations.id)).limit(Math.max(0, f.limit)).all().reverse();
  }

  async claimUse(u: TokenUse): Promise<boolean> {
    const { changes } = this.db
      .insert(tokenUses)
      .values({ jti: u.jti, issuer: u.issuer, usedAt: u.usedAt, expiresAt: u.expiresAt })
      .onConflictDoNothing()
      .run();
    return changes > 0;
  }

  async setUseSession(jti: string, sessionId: string): Promise<void> {
    this.db
      .update(tokenUses)
      .set({ sessionId })
      .where(and(eq(tokenUses.jti, jti), isNull(tokenUses.sessionId)))
      .run();
  }

  async pruneUses(before: Date): Promise<number> {
    return this.db.delete(tokenUses).where(lt(tokenUses.expiresAt, before)).run().changes;
  }
}
