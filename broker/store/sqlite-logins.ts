// Refused logins in the embedded SQLite store (issue 10): rare writes, plain drizzle queries, no group
// commit. SqliteStore delegates its refused-login methods here.
import { and, desc, gte, lt, type SQL } from 'drizzle-orm';
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import type { NewRefusedLogin, RefusedLogin, RefusedLoginFilter } from './types.js';
import { refusedLogins } from './schema.sqlite.js';

export class SqliteLogins {
  constructor(private readonly db: BetterSQLite3Database) {}

  async record(r: NewRefusedLogin): Promise<void> {
    this.db.insert(refusedLogins).values(r).run();
  }

  async list(f: RefusedLoginFilter = {}): Promise<RefusedLogin[]> {
    const where: SQL[] = [];
    if (f.since !== undefined) where.push(gte(refusedLogins.at, f.since));
    const query = this.db
      .select()
      .from(refusedLogins)
      .where(and(...where))
      .orderBy(desc(refusedLogins.at), desc(refusedLogins.id));
    return f.limit !== undefined ? query.limit(Math.max(0, f.limit)).all() : query.all();
  }

  async prune(before: Date): Promise<number> {
    return this.db.delete(refusedLogins).where(lt(refusedLogins.at, before)).run().changes;
  }
}
