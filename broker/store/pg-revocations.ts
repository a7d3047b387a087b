// Revocations and single-use token ids in the PostgreSQL store. claimUse is one INSERT … ON CONFLICT DO
// NOTHING on the token id's primary key, never a read then a write: a token stays single-use however many
// replicas race for it. PgStore delegates its revocation methods here.
import { and, asc, desc, eq, gt, isNull, lt, type SQL } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { NewRevocation, Revocation, RevocationFilter, TokenUse } from './types.js';
import { revocations, tokenUses } from './schema.pg.js';

export class PgRevocations {
  constructor(private readonly db: NodePgDatabase) {}

  async add(r: NewRevocation): Promise<Revocation> {
    if (!r.build && !r.jti) throw new Error('store: a revocation names a build or a jti');
    const [row] = await this.db
      .insert(revocations)
      .values({ build: r.build, jti: r.jti, reason: r.reason, revokedBy: r.revokedBy, revokedAt: r.revokedAt })
      .returning();
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
    if (f.limit === undefined) return query.orderBy(asc(revocations.id));
    return (await query.orderBy(desc(revocations.id)).limit(Math.max(0, f.limit))).reverse();
  }

  async claimUse(u: TokenUse): Promise<boolean> {
    const { rowCount } = await this.db
      .insert(tokenUses)
      .values({ jti: u.jti, issuer: u.issuer, usedAt: u.usedAt, expiresAt: u.expiresAt })
      .onConflictDoNothing();
    return (rowCount ?? 0) > 0;
  }

  async setUseSession(jti: string, sessionId: string): Promise<void> {
    await this.db
      .update(tokenUses)
      .set({ sessionId })
      .where(and(eq(tokenUses.jti, jti), isNull(tokenUses.sessionId)));
  }

  async pruneUses(before: Date): Promise<number> {
    return (await this.db.delete(tokenUses).where(lt(tokenUses.expiresAt, before))).rowCount ?? 0;
  }
}
