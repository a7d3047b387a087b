// Raw SQL helpers of the PostgreSQL store's bulk writes (pg-journal.ts, the direct path in pg.ts): many rows
// in ONE statement, each column bound as one array and spread back into rows by unnest(). Table, column
// and type names come from the drizzle schema (schema.pg.ts), which stays the source of truth for the layout.
import { getTableName } from 'drizzle-orm';
import type { PgColumn, PgTable } from 'drizzle-orm/pg-core';
import type pg from 'pg';

export const q = (c: { name: string }) => `"${c.name}"`;
export const T = (t: PgTable) => `"${getTableName(t)}"`;

/**
 * `INSERT INTO t (a, b) SELECT … FROM unnest($1::<type of a>[], $2::<type of b>[]) AS u(a, b) <tail>`.
 * `tail` may filter (`WHERE …`, on u's columns as u."name") and add ON CONFLICT / RETURNING.
 */
export function unnestInsert(table: PgTable, cols: PgColumn[], tail: string): string {
  const arrays = cols.map((c, i) => `$${i + 1}::${c.getSQLType()}[]`).join(', ');
  return `INSERT INTO ${T(table)} (${cols.map(q).join(', ')}) SELECT ${cols.map((c) => `u.${q(c)}`).join(', ')} FROM unnest(${arrays}) AS u(${cols.map(q).join(', ')}) ${tail}`;
}

/** `unnest($first::type[], …) AS u(…)` for an UPDATE … FROM: the arrays numbered from `first`. */
export function unnestFrom(cols: PgColumn[], first = 1): string {
  const arrays = cols.map((c, i) => `$${first + i}::${c.getSQLType()}[]`).join(', ');
  return `unnest(${arrays}) AS u(${cols.map(q).join(', ')})`;
}

/** Rows (one value array per row, in `cols` order) turned into one array per column: unnest's parameters. */
export function columnsOf(rows: readonly unknown[][], width: number): unknown[][] {
  const out = Array.from({ length: width }, () => new Array<unknown>(rows.length));
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    for (let c = 0; c < width; c++) out[c]![r] = row[c] ?? null;
  }
  return out;
}

/** A time for a timestamptz parameter: epoch ms (journal events) or a Date, as ISO text (exact to the ms). */
export const iso = (t: number | Date | null | undefined): string | null => (t === null || t === undefined ? null : new Date(t).toISOString());
/** A value for a jsonb parameter. */
export const json = (v: unknown): string => JSON.stringify(v);

/** An error of the data (class 22: bad value) or of a constraint (class 23): that event alone cannot be applied. */
export function dataError(e: unknown): boolean {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

/** Runs `fn` in one transaction on a connection of its own; rolls back when it throws. */
export async function inTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  let broken = false;
  try {
    await c.query('BEGIN');
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {
      broken = true; // the connection itself failed: do not hand it out again
    });
    throw e;
  } finally {
    c.release(broken);
  }
}

/**
 * Applies `rows` with `apply` (which returns how many of them it skipped) under a savepoint; when the
 * statement fails on a bad value or a constraint, applies them one by one instead, each under its own
 * savepoint, counting the ones that still fail as skipped: one bad event never stops a batch.
 */
export async function guarded<R>(c: pg.PoolClient, rows: readonly R[], apply: (rows: readonly R[]) => Promise<number>): Promise<number> {
  if (rows.length === 0) return 0;
  await c.query('SAVEPOINT bulk');
  try {
    const skipped = await apply(rows);
    await c.query('RELEASE SAVEPOINT bulk');
    return skipped;
  } catch (e) {
    if (!dataError(e)) throw e;
    await c.query('ROLLBACK TO SAVEPOINT bulk');
    await c.query('RELEASE SAVEPOINT bulk');
  }
  let skipped = 0;
  for (const row of rows) {
    await c.query('SAVEPOINT one');
    try {
      skipped += await apply([row]);
    } catch (e) {
      if (!dataError(e)) throw e;
      await c.query('ROLLBACK TO SAVEPOINT one');
      skipped++;
    }
    await c.query('RELEASE SAVEPOINT one');
  }
  return skipped;
}
