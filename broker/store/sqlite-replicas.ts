// The brokers sharing the embedded store (one, usually: SQLite is a single host's store), by heartbeat.
// SqliteStore delegates its replica methods here.
import { desc, eq } from 'drizzle-orm';
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { replicas } from './schema.sqlite.js';
import type { ReplicaBeat } from './types.js';

export class SqliteReplicas {
  constructor(private readonly db: BetterSQLite3Database) {}

  async heartbeat(r: ReplicaBeat): Promise<void> {
    this.db
      .insert(replicas)
      .values({ id: r.id, startedAt: r.startedAt, lastSeen: r.lastSeen })
      .onConflictDoUpdate({ target: replicas.id, set: { lastSeen: r.lastSeen } })
      .run();
  }

  async list(): Promise<ReplicaBeat[]> {
    return this.db.select().from(replicas).orderBy(desc(replicas.lastSeen)).all();
  }

  async remove(id: string): Promise<void> {
    this.db.delete(replicas).where(eq(replicas.id, id)).run();
  }
}
