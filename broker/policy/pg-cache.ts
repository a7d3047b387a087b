// Second-level cache for PostgreSQL: by literal-normalised text, for statements whose classification provably
// does not depend on their literals (see pg-literal-key.ts for the key, classifyPostgresForCache for the rule).
import type { FunctionRef } from '../catalog/types.js';
import type { Classification, ClassifiedStatement, Kind } from '../types.js';
import { classifyPostgresForCache } from './classify-postgres.js';
import { Lru } from './lru.js';
import { pgLiteralKey } from './pg-literal-key.js';

/** What a literal variant shares with the statement that was parsed: literals change no call, operator or arity. */
interface Shape {
  kinds: readonly Kind[];
  tables: readonly string[];
  calls: readonly FunctionRef[] | undefined;
  operators: readonly string[] | undefined;
  casts: readonly string[] | undefined;
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
    const st: ClassifiedStatement = { sql: key.sql, kinds: [...shape.kinds], tables: [...shape.tables] };
    if (shape.calls) st.calls = shape.calls.map((r) => ({ ...r }));
    if (shape.operators) st.operators = [...shape.operators];
    if (shape.casts) st.casts = [...shape.casts];
    const classification = { statements: [st] };
    seenOnce.set(sql, classification);
    return { classification, cacheByText: false };
  }
  const { classification, literalIndependent } = classifyPostgresForCache(sql);
  const st = classification.statements[0];
  // The key's statement text must be the parser's, or a hit would report a different `sql` than a parse.
  if (key && literalIndependent && st && st.sql === key.sql) {
    shapes.set(key.key, {
      kinds: [...st.kinds],
      tables: [...st.tables],
      calls: st.calls?.map((r) => ({ ...r })),
      operators: st.operators && [...st.operators],
      casts: st.casts && [...st.casts],
    });
  }
  return { classification, cacheByText: true };
}
