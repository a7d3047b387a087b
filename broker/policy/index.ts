// Classification and decision, behind one cached entry point per dialect.
import type { Classification } from '../types.js';
import { classifyPostgres, loadPostgresParser } from './classify-postgres.js';
import { Lru } from './lru.js';

export { decide, decideStatement, mostSevere, type PolicyConfig, type Rule } from './decide.js';
export { loadPostgresParser };

export type Dialect = 'postgres' | 'mysql';

const caches: Record<Dialect, Lru<string, Classification>> = { postgres: new Lru(5000), mysql: new Lru(5000) };

/** Classify a SQL string; results are cached by text (bounded LRU) so each distinct statement is parsed once. */
export function classify(dialect: Dialect, sql: string): Classification {
  const cache = caches[dialect];
  let c = cache.get(sql);
  if (!c) {
    if (dialect !== 'postgres') {
      c = { statements: [{ sql, kinds: ['unknown'], tables: [] }], error: 'the MySQL classifier is not available yet' };
    } else {
      c = classifyPostgres(sql);
    }
    cache.set(sql, c);
  }
  return c;
}
