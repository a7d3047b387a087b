// The entry point of catalog refinement for PostgreSQL (see pg-catalog.ts for how names are resolved and judged):
// what to do without a catalog, and with definitions a session changed but has not committed.
//   - No catalog (it could not be read): a statement that names any relation, function, operator or cast type is
//     `unknown`, saying why. Fail closed.
//   - Pending (the session's open transaction ran DDL), and in one request the statements after one that
//     redefines something: a view created or replaced is judged by its new query (read from the DDL text);
//     any other name it redefined makes the statements naming it `unknown` (pg-defines.ts): the catalog the
//     broker reads on its own connection does not have the change yet. A table it attached as a partition or
//     made an inheritance child counts among its new parent's descendants (pg-inherits.ts).
import type { CatalogSnapshot, CatalogView } from '../catalog/types.js';
import type { Classification, Kind } from '../types.js';
import { KINDS } from '../types.js';
import { needsCatalog, overlay, refineAll, refineStatement, writtenView, type Refined } from './pg-catalog.js';
import { changesCatalog, doubtful, pgDoubtAfter, type NewChild } from './pg-defines.js';
import { adopt } from './pg-inherits.js';

export type { Refined };

/** What a session's open transaction redefined and the catalog cannot see yet. */
export interface Pending {
  views: readonly CatalogView[];
  /** Names in doubt ('all': anything may have changed). */
  doubt: ReadonlySet<string> | 'all' | null;
  /** Tables made partitions or inheritance children. */
  children?: readonly NewChild[];
}

export const NOTHING_PENDING: Pending = Object.freeze({ views: [], doubt: null });

/** `pending` after a statement of these kinds with this text (the same object when it changes nothing). */
export function afterStatement(pending: Pending, sql: string, kinds: readonly Kind[]): Pending {
  const r = pgDoubtAfter(sql, kinds);
  if (r === null) return pending;
  const children = r !== 'all' && r.children.length ? [...(pending.children ?? []), ...r.children] : pending.children;
  if (r === 'all' || pending.doubt === 'all') return { views: pending.views, doubt: 'all', ...(children ? { children } : {}) };
  const views = r.views.length ? [...pending.views, ...r.views.map((v) => writtenView(v.schema, v.name, v.sql))] : pending.views;
  return { views, doubt: new Set([...(pending.doubt ?? []), ...r.names]), ...(children ? { children } : {}) };
}

function withoutCatalog(c: Classification, why: string): Refined {
  if (!needsCatalog(c)) return { classification: c, unresolved: 0 };
  const reason = `${why}, so what its functions, operators and views do is not known`;
  const statements = c.statements.map((st) =>
    st.tables.length || st.calls?.length || st.operators?.length || st.casts?.length
      ? { ...st, kinds: KINDS.filter((k) => k === 'unknown' || st.kinds.includes(k)), reason }
      : st,
  );
  return { classification: { ...c, statements }, unresolved: 0 };
}

/**
 * Refine `c` against `snap` (null: the catalog could not be read, `why` says how), given what the session has
 * redefined and not committed; with how many calls no function of the snapshot answers.
 */
export function refinePostgresDetailed(
  c: Classification,
  snap: CatalogSnapshot | null,
  why = 'the target’s catalog could not be read',
  pending: Pending = NOTHING_PENDING,
): Refined {
  if (c.error) return { classification: c, unresolved: 0 };
  if (!snap) return withoutCatalog(c, why);
  const sequence = c.statements.length > 1 && c.statements.some((st) => changesCatalog(st.kinds));
  if (pending === NOTHING_PENDING && !sequence) return refineAll(c, snap);
  // Statement by statement, each judged with what the ones before it (and the transaction) redefined.
  let now = pending;
  let unresolved = 0;
  const statements = c.statements.map((st) => {
    const r = refineStatement(st, adopt(overlay(snap, now.views), now.children));
    unresolved += r.unresolved;
    const out = now.doubt ? (doubtful({ statements: [r.st] }, now.doubt).statements[0] ?? r.st) : r.st;
    now = afterStatement(now, st.sql, st.kinds);
    return out;
  });
  return { classification: statements.every((st, i) => st === c.statements[i]) ? c : { ...c, statements }, unresolved };
}

/** Refine a PostgreSQL classification against the target's catalog snapshot (null: it could not be read). */
export function refinePostgres(c: Classification, snap: CatalogSnapshot | null): Classification {
  return refinePostgresDetailed(c, snap).classification;
}
