// Classification and decision, behind one cached entry point per dialect.
import type { Classification, Kind } from '../types.js';
import { classifyMysql } from './classify-mysql.js';
import { loadPostgresParser } from './classify-postgres.js';
import { Lru } from './lru.js';
import { classifyPostgresShaped } from './pg-cache.js';
import { settingKinds } from './pg-functions.js';

export { decide, decideStatement, mostSevere, type PolicyConfig, type Rule } from './decide.js';
export { loadPostgresParser };

export type Dialect = 'postgres' | 'mysql';

const caches: Record<Dialect, Lru<string, Classification>> = { postgres: new Lru(5000), mysql: new Lru(5000) };

/**
 * Classify a SQL string; results are cached by text (bounded LRU) so each distinct statement is parsed once.
 * PostgreSQL has a second level keyed by literal-normalised text, for plain SELECTs and INSERTs (pg-cache.ts).
 */
export function classify(dialect: Dialect, sql: string): Classification {
  const cache = caches[dialect];
  let c = cache.get(sql);
  if (!c) {
    if (dialect === 'mysql') {
      c = classifyMysql(sql);
    } else {
      const pg = classifyPostgresShaped(sql);
      if (!pg.cacheByText) return pg.classification; // a one-off literal variant, answered by its shape
      c = pg.classification;
    }
    cache.set(sql, c);
  }
  return c;
}

/** Why a setting of each non-read kind may not be opened at connect. */
const SETTING_RISKS: Partial<Record<Kind, string>> = {
  privilege: 'it changes the role every statement runs as',
  unknown: 'the server would then read quotes or backslashes where the classifier does not',
  admin: 'it switches off logging, auditing or integrity checks, or loads code',
};

/**
 * A session setting a client asks for when it connects (a PostgreSQL startup parameter, or a `-c name=value`
 * in its `options`, named by `from`) is vetted like the same `SET` would be: one that is not a harmless read
 * (e.g. a client_encoding in which the server would see quotes the classifier does not, or a role) is refused,
 * so it cannot be opened at connect time either.
 */
export function startupSettingProblem(name: string, value: string, from?: string | null): string | null {
  const kinds = settingKinds(name, { value });
  if (kinds.length === 1 && kinds[0] === 'read') return null;
  const risks = kinds.map((k) => SETTING_RISKS[k]).filter((r): r is string => !!r);
  const what = from ? `the setting ${name}=${JSON.stringify(value)} (options: ${from})` : `the startup parameter ${name}=${JSON.stringify(value)}`;
  return `${what} is not allowed through the broker (as a SET it would be ${kinds.join(', ')}${risks.length ? `: ${risks.join('; ')}` : ''})`;
}
