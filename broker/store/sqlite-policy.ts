// Policy versions in the embedded SQLite store (policy_versions). A new version is the newest + 1, read and
// written in one IMMEDIATE transaction (the database's write lock), and the primary key is the guard: a
// version another connection took first fails the insert, which is retried with the next number.
import { desc, eq } from 'drizzle-orm';
import type { BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { policySha256 } from './policy-hash.js';
import { policyVersions } from './schema.sqlite.js';
import type { NewPolicyVersion, PolicyVersion } from './types.js';

type Row = typeof policyVersions.$inferSelect;

const toVersion = (r: Row): PolicyVersion => ({
  version: r.version,
  rules: r.rules,
  sha256: r.sha256,
  author: r.author,
  message: r.message,
  appliedAt: r.appliedAt,
});

/** A primary-key (or unique) violation: someone else took the version number. */
function taken(e: unknown): boolean {
  const code = typeof e === 'object' && e !== null ? String((e as { code?: unknown }).code) : '';
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

export class SqlitePolicy {
  constructor(private readonly db: BetterSQLite3Database) {}

  async add(v: NewPolicyVersion): Promise<PolicyVersion> {
    const sha256 = policySha256(v.rules);
    for (let attempt = 0; ; attempt++) {
      try {
        return this.db.transaction(
          (tx) => {
            const [last] = tx.select({ version: policyVersions.version }).from(policyVersions).orderBy(desc(policyVersions.version)).limit(1).all();
            const row = { version: (last?.version ?? 0) + 1, rules: v.rules, sha256, author: v.author, message: v.message, appliedAt: v.appliedAt };
            tx.insert(policyVersions).values(row).run();
            return toVersion(row);
          },
          { behavior: 'immediate' },
        );
      } catch (e) {
        if (!taken(e) || attempt >= 10) throw e;
      }
    }
  }

  async get(version?: number): Promise<PolicyVersion | null> {
    const q = this.db.select().from(policyVersions);
    const [row] = version === undefined ? q.orderBy(desc(policyVersions.version)).limit(1).all() : q.where(eq(policyVersions.version, version)).all();
    return row ? toVersion(row) : null;
  }

  /** The newest version's number only: what every broker polls. */
  async active(): Promise<number | null> {
    const [row] = this.db.select({ version: policyVersions.version }).from(policyVersions).orderBy(desc(policyVersions.version)).limit(1).all();
    return row?.version ?? null;
  }

  async list(): Promise<PolicyVersion[]> {
    return this.db.select().from(policyVersions).orderBy(policyVersions.version).all().map(toVersion);
  }
}
