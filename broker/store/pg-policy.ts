// Policy versions in the PostgreSQL store (policy_versions), shared by every broker of a fleet. A new version
// is the newest + 1 in ONE statement (INSERT … SELECT max + 1); the primary key is the guard: of two brokers
// applying at once, the second's insert fails with a unique violation and is retried with the next number.
import { desc, eq, sql } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { policySha256 } from './policy-hash.js';
import { policyVersions } from './schema.pg.js';
import { q, T } from './pg-sql.js';
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

const pv = policyVersions;

/** The unique violation of the primary key, unwrapped from drizzle's error or not. */
function taken(e: unknown): boolean {
  const code = (x: unknown) => (typeof x === 'object' && x !== null ? (x as { code?: unknown }).code : undefined);
  return code(e) === '23505' || code((e as { cause?: unknown } | null)?.cause) === '23505';
}

export class PgPolicy {
  constructor(private readonly db: NodePgDatabase) {}

  async add(v: NewPolicyVersion): Promise<PolicyVersion> {
    const sha256 = policySha256(v.rules);
    for (let attempt = 0; ; attempt++) {
      try {
        const { rows } = await this.db.execute<{ version: number }>(
          sql`INSERT INTO ${sql.raw(`${T(pv)} (${[pv.version, pv.rules, pv.sha256, pv.author, pv.message, pv.appliedAt].map(q).join(', ')})`)}
              SELECT coalesce(max(${sql.raw(q(pv.version))}), 0) + 1, ${JSON.stringify(v.rules)}::jsonb, ${sha256}, ${v.author}, ${v.message},
                     ${v.appliedAt.toISOString()}::timestamptz
              FROM ${sql.raw(T(pv))} RETURNING ${sql.raw(q(pv.version))} AS version`,
        );
        return { version: rows[0]!.version, ...v, sha256 };
      } catch (e) {
        if (!taken(e) || attempt >= 20) throw e;
      }
    }
  }

  async get(version?: number): Promise<PolicyVersion | null> {
    const query = this.db.select().from(pv);
    const [row] = await (version === undefined ? query.orderBy(desc(pv.version)).limit(1) : query.where(eq(pv.version, version)));
    return row ? toVersion(row) : null;
  }

  /** The newest version's number only: what every broker polls (an index-only look at the primary key). */
  async active(): Promise<number | null> {
    const [row] = await this.db.select({ version: pv.version }).from(pv).orderBy(desc(pv.version)).limit(1);
    return row?.version ?? null;
  }

  async list(): Promise<PolicyVersion[]> {
    return (await this.db.select().from(pv).orderBy(pv.version)).map(toVersion);
  }
}
