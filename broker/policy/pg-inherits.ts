// Partitions and inheritance children (PostgreSQL). Reading or writing a partitioned table or an inheritance
// parent — `SELECT * FROM p`, `UPDATE p …`, `DELETE FROM p …`, `COPY (SELECT … FROM p) TO …`, `TRUNCATE p` —
// reaches the rows of every table below it (partitions of partitions too), unless it is named with ONLY. So a
// table a statement names without ONLY, and every table a view or function it runs reads (whose ONLY is not
// known here), counts as touching each of its descendants, as the snapshot lists them (pg_inherits, read by
// broker/catalog/postgres.ts), added to the statement's tables as `schema.name` and `name`: a `tables:` deny on
// a partition is not escaped through its parent, and an `allow` with `tables:` must cover the partitions too.
// Conservative where it cannot tell: INSERT into an inheritance parent (which stays there) and `COPY p TO`
// (which copies p's own rows) count the children too; an unqualified name is a parent of that name in any schema.
// A table a session attached or made a child in its open transaction (not yet in the catalog) counts too (adopt).
import type { CatalogParent, CatalogSnapshot } from '../catalog/types.js';
import type { ClassifiedStatement } from '../types.js';
import type { NewChild } from './pg-defines.js';

/** How many descendants a reason names before saying how many more. */
const NAMED = 5;

/** The partitioned tables and inheritance parents a table name of a statement may be. */
export function parentsNamed(snap: CatalogSnapshot, table: string): readonly CatalogParent[] {
  const dot = table.lastIndexOf('.');
  const all = snap.parents?.get(table.slice(dot + 1));
  if (!all) return [];
  if (dot < 0) return all;
  const schema = table.slice(0, dot);
  return all.filter((p) => p.schema === '' || p.schema.toLowerCase() === schema); // '': adopted, schema not written
}

/** Whether the statement names a table (without ONLY) that the snapshot knows has descendants. */
export function namesParent(snap: CatalogSnapshot, st: ClassifiedStatement): boolean {
  if (!snap.parents?.size) return false;
  return st.tables.some((t) => snap.parents!.has(t.slice(t.lastIndexOf('.') + 1)) && !st.only?.includes(t));
}

/** The tables of `st` that reach their descendants: all but those named only with ONLY. */
export function inheritingTables(st: ClassifiedStatement): readonly string[] {
  return st.only?.length ? st.tables.filter((t) => !st.only!.includes(t)) : st.tables;
}

export interface Reached {
  /** The descendants of each parent reached, as `schema.name` and as `name`. */
  lists: (readonly string[])[];
  /** Why, naming the first parent and some of its descendants. */
  via: string;
}

/** A parent's descendants as `schema.name` and as `name`, made once per snapshot (a statement on it is cheap). */
const NAMES = new WeakMap<CatalogParent, readonly string[]>();

function namesBelow(p: CatalogParent): readonly string[] {
  let names = NAMES.get(p);
  if (!names) NAMES.set(p, (names = p.descendants.flatMap((d) => (d.includes('.') ? [d, d.slice(d.lastIndexOf('.') + 1)] : [d]))));
  return names;
}

/** The descendants of the parents among `tables` (null: none is one). */
export function descendantsOf(snap: CatalogSnapshot, tables: Iterable<string>): Reached | null {
  if (!snap.parents?.size) return null;
  let out: Reached | null = null;
  const seen = new Set<CatalogParent>();
  for (const t of tables) {
    for (const p of parentsNamed(snap, t)) {
      if (seen.has(p)) continue;
      seen.add(p);
      out ??= { lists: [], via: describe(p) };
      out.lists.push(namesBelow(p));
    }
  }
  return out;
}

/**
 * `tables` and the descendants reached, each once. Not through one Set: with 10,000 partitions that costs
 * milliseconds a statement; the common case, one parent, is one filtered copy of its list.
 */
export function withDescendants(tables: ReadonlySet<string>, reached: Reached): string[] {
  const [first, ...more] = reached.lists;
  if (!more.length) return [...tables, ...first!.filter((t) => !tables.has(t))];
  const all = new Set(tables);
  for (const list of reached.lists) for (const t of list) all.add(t);
  return [...all];
}

function describe(p: CatalogParent): string {
  const n = p.descendants.length;
  const named = p.descendants.slice(0, NAMED).join(', ');
  const more = n > NAMED ? ` and ${(n - NAMED).toLocaleString('en-US')} more` : '';
  return `${p.schema ? `${p.schema}.` : ''}${p.name} reaches its partitions and inheritance children too (${named}${more}; ONLY ${p.name} would not)`;
}

const adopted = new WeakMap<readonly NewChild[], WeakMap<CatalogSnapshot, CatalogSnapshot>>();

/**
 * `snap` with tables a session made partitions or inheritance children and has not committed: each, with its own
 * descendants, joins its new parent's (every parent of that name when unqualified; a new one when none) and
 * every table's above that parent.
 */
export function adopt(snap: CatalogSnapshot, children: readonly NewChild[] | undefined): CatalogSnapshot {
  if (!children?.length) return snap;
  let bySnap = adopted.get(children);
  if (!bySnap) adopted.set(children, (bySnap = new WeakMap()));
  let out = bySnap.get(snap);
  if (out) return out;
  const parents = new Map<string, CatalogParent[]>();
  for (const [k, l] of snap.parents ?? []) parents.set(k, [...l]);
  out = { ...snap, parents };
  for (const { parent, child } of children) {
    const below = [child, ...parentsNamed(out, child).flatMap((p) => p.descendants)];
    const dot = parent.lastIndexOf('.');
    const name = parent.slice(dot + 1);
    // A table that had no children yet becomes a parent.
    if (!parentsNamed(out, parent).length)
      parents.set(name, [...(parents.get(name) ?? []), { schema: dot < 0 ? '' : parent.slice(0, dot), name, descendants: [] }]);
    const itself = new Set(parentsNamed(out, parent));
    const isParent = (d: string) => d === parent || (dot < 0 && d.endsWith(`.${name}`));
    for (const [k, l] of parents) {
      const grown = l.map((p) => (itself.has(p) || p.descendants.some(isParent) ? { ...p, descendants: [...new Set([...p.descendants, ...below])] } : p));
      parents.set(k, grown);
    }
  }
  bySnap.set(snap, out);
  return out;
}
