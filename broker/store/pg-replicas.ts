// The brokers sharing the PostgreSQL store, by heartbeat (as sqlite-replicas.ts). PgStore delegates here.
import { desc, eq } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { replicas } from './schema.pg.js';
import type { ReplicaBeat } from './types.js';

export class PgReplicas {
  constructor(private readonly db: NodePgDatabase) {}

  async heartbeat(r: ReplicaBeat): Promise<void> {
    await this.db
      .insert(replicas)
      .values({ id: r.id, startedAt: r.startedAt, lastSeen: r.lastSeen })
      .onConflictDoUpdate({ target: replicas.id, set: { lastSeen: r.lastSeen } });
  }

  async list(): Promise<ReplicaBeat[]> {
    return this.db.select().from(replicas).orderBy(desc(replicas.lastSeen));
  }

  async remove(id: string): Promise<void> {
    await this.db.delete(replicas).where(eq(replicas.id, id));
  }
}
