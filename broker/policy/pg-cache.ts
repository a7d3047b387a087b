// Second-level cache for PostgreSQL: by literal-normalised text, for statements whose classification provably
// does not depend on their literals (see pg-literal-key.ts for the key, classifyPostgresForCache for the rule).
import type { Classification, Kind } from '../types.js';
import { classifyPostgresForCache } from './classify-postgres.js';
import { Lru } from './lru.js';
import { pgLiteralKey } from './pg-literal-key.js';

interface Shape {
  kinds: readonly Kind[];
  tables: readonly string[];
}

const shapes = new Lru<string, Shape>(5000);
/** Texts answered by shape once: a second sighting is worth a place in the exact-text cache. */
const seenOnce = new Lru<string, Classification>(256);

/**
 * Classify `sql`, which the exact-text cache has just missed. A literal variant of an already classified
 * plain SELECT or INSERT (`pgbench -S`: `SELECT abalance FROM pgbench_accounts WHERE aid = <n>;`) is answered
 * from its shape without parsing. `cacheByText`: whether the caller should keep the answer by text — not for a
 * one-off literal variant: retaining thousands of them costs more (GC) than the shape lookup it would save.
 */
export function classifyPostgresShaped(sql: string): { classification: Classification; cacheByText: boolean } {
  const key = pgLiteralKey(sql);
  const shape = key && shapes.get(key.key);
  if (key && shape) {
    const again = seenOnce.get(sql);
    if (again) return { classification: again, cacheByText: true };
    const classification = { statements: [{ sql: key.sql, kinds: [...shape.kinds], tables: [...shape.tables] }] };
    seenOnce.set(sql, classification);
    return { classification, cacheByText: false };
  }
  const { classification, literalIndependent } = classifyPostgresForCache(sql);
  const st = classification.statements[0];
  // The key's statement text must be the parser's, or a hit would report a different `sql` than a parse.
  if (key && literalIndependent && st && st.sql === key.sql) shapes.set(key.key, { kinds: [...st.kinds], tables: [...st.tables] });
  return { classification, cacheByText: true };
}
