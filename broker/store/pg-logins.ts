// Refused logins in the PostgreSQL store: rare writes, plain drizzle queries. PgStore delegates here.
import { and, desc, gte, lt, type SQL } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import type { NewRefusedLogin, RefusedLogin, RefusedLoginFilter } from './types.js';
import { refusedLogins } from './schema.pg.js';

export class PgLogins {
  constructor(private readonly db: NodePgDatabase) {}

  async record(r: NewRefusedLogin): Promise<void> {
    await this.db.insert(refusedLogins).values(r);
  }

  async list(f: RefusedLoginFilter = {}): Promise<RefusedLogin[]> {
    const where: SQL[] = [];
    if (f.since !== undefined) where.push(gte(refusedLogins.at, f.since));
    const query = this.db
      .select()
      .from(refusedLogins)
      .where(and(...where))
      .orderBy(desc(refusedLogins.at), desc(refusedLogins.id));
    return f.limit !== undefined ? query.limit(Math.max(0, f.limit)) : query;
  }

  async prune(before: Date): Promise<number> {
    return (await this.db.delete(refusedLogins).where(lt(refusedLogins.at, before))).rowCount ?? 0;
  }
}
