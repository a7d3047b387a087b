// `SELECT set_config(name, 'value', false) FROM pg_settings WHERE name = 'some_setting'` (pg_dump 15.8+ says so for
// restrict_nonsystem_relation_kind, to set it only where the server knows it): the setting name is not a literal,
// but the rows it comes from can only be those of the literal names in the WHERE clause, so the call is the SET of
// those settings. Only exactly that shape is evaluated; anything else leaves the name unknown, as before.
//
// Not followed: a relation named pg_settings in another schema that a session put before pg_catalog on its
// search_path, whose `name` compares with a user-defined `=` or a nondeterministic collation.
import { list, literalString, names, node, type Node } from './pg-ast.js';
import type { RowSettings } from './pg-functions.js';

/** The keys a plain `SELECT … FROM … WHERE …` has, and nothing else (no DISTINCT, GROUP BY, ORDER BY, set operation …). */
const PLAIN = new Set(['targetList', 'fromClause', 'whereClause', 'limitOption', 'op']);

/**
 * For a SELECT of exactly the shape `SELECT … FROM [pg_catalog.]pg_settings [[AS] s] WHERE name = 'a'` (or `'a' = name`,
 * or `name IN ('a', 'b')`): which setting names a `name` column reference in its target list stands for. The target
 * list is computed only for rows the WHERE clause lets through. Null for any other statement.
 */
export function settingsRows(select: Node): RowSettings | null {
  if (Object.keys(select).some((k) => !PLAIN.has(k)) || (select.op !== undefined && select.op !== 'SETOP_NONE')) return null;
  if (select.limitOption !== undefined && select.limitOption !== 'LIMIT_OPTION_DEFAULT') return null;
  const from = list(select.fromClause);
  const rv = node(node(from[0])?.RangeVar);
  if (from.length !== 1 || !rv || rv.relname !== 'pg_settings') return null;
  if (rv.schemaname !== undefined && rv.schemaname !== 'pg_catalog') return null;
  if (rv.catalogname !== undefined) return null;
  const alias = node(rv.alias);
  // Column aliases rename the columns: `name` would then be another one.
  if (alias && list(alias.colnames).length) return null;
  const qualifiers = alias ? [[String(alias.aliasname)]] : [['pg_settings'], ['pg_catalog', 'pg_settings']];
  const isName = (v: unknown): boolean => {
    const fields = names(node(node(v)?.ColumnRef)?.fields);
    if (fields?.[fields.length - 1] !== 'name') return false;
    const q = fields.slice(0, -1);
    return q.length === 0 || qualifiers.some((w) => w.length === q.length && w.every((x, i) => x === q[i]));
  };
  const settings = allowed(node(select.whereClause), isName);
  if (!settings?.length) return null;
  return (arg) => (isName(arg) ? settings : null);
}

/** The literal names a WHERE clause `name = 'a'` / `'a' = name` / `name IN ('a', …)` allows; null for anything else. */
function allowed(where: Node | undefined, isName: (v: unknown) => boolean): string[] | null {
  const e = node(where?.A_Expr);
  const op = names(e?.name);
  if (!e || !op || op.length < 1 || op.length > 2 || op[op.length - 1] !== '=' || (op.length === 2 && op[0] !== 'pg_catalog')) return null;
  if (e.kind === 'AEXPR_OP') {
    const value = isName(e.lexpr) ? literalString(e.rexpr) : isName(e.rexpr) ? literalString(e.lexpr) : null;
    return value === null ? null : [value];
  }
  if (e.kind === 'AEXPR_IN' && isName(e.lexpr)) {
    const items = list(node(node(e.rexpr)?.List)?.items ?? e.rexpr);
    const values = items.map(literalString);
    return values.length && values.every((v): v is string => v !== null) ? values : null;
  }
  return null;
}
