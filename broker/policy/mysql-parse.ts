// node-sql-parser behind a small interface: the AST of one statement, the tables it touches, and whether an
// UPDATE/DELETE WHERE clause restricts anything. Its expression precedence is not MySQL's (`a=1 || 1` is read
// as `a = (1 || 1)`, `1 OR a=2 AND a=3` as `(1 OR a=2) AND a=3`), so the AND/OR/XOR structure of a WHERE clause
// comes from the tokens here, with MySQL's precedence, and the parser only sees the leaves.
import { grammar, type Grammar } from './mysql-grammars.js';
import { render, type Token } from './mysql-lexer.js';
import { isPunct, isWord } from './mysql-tokens.js';

export type AstNode = Record<string, unknown>;

export interface Parsed {
  ast: AstNode;
  /** Real tables, lower-cased, `db.table` where written so (CTE names left out). */
  tables: string[];
}

const isNode = (v: unknown): v is AstNode => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Visit every object under `n`. */
export function visit(n: unknown, f: (o: AstNode) => void): void {
  if (Array.isArray(n)) for (const x of n) visit(x, f);
  else if (isNode(n)) {
    f(n);
    for (const v of Object.values(n)) visit(v, f);
  }
}

/** Unqualified table names a query refers to (FROM and JOIN entries, not column qualifiers). */
function tableRefs(n: unknown): Set<string> {
  const out = new Set<string>();
  visit(n, (o) => {
    if (o.type !== 'column_ref' && 'db' in o && !o.db && typeof o.table === 'string') out.add(o.table.toLowerCase());
  });
  return out;
}

/**
 * Names of the statement's own CTEs, which are not tables — except where the name is read before it is defined:
 * in `WITH t AS (SELECT * FROM t) …` the body reads the real t. A CTE inside a subquery is not looked at, so its
 * name stays in the list like a table (the safe direction).
 */
function cteNames(ast: AstNode): Set<string> {
  const list = Array.isArray(ast.with) ? (ast.with as unknown[]).filter(isNode) : [];
  const recursive = list.some((w) => w.recursive === true);
  const bodies = list.map((w) => tableRefs(isNode(w.stmt) ? w.stmt.ast : undefined));
  const out = new Set<string>();
  list.forEach((w, i) => {
    const name = isNode(w.name) ? w.name.value : w.name;
    if (typeof name !== 'string') return;
    const n = name.toLowerCase();
    const readBefore = bodies.slice(0, recursive ? i : i + 1).some((b) => b.has(n));
    if (!readBefore) out.add(n);
  });
  return out;
}

/** Parse one statement (MySQL grammar first, then MariaDB's, which knows RETURNING); an error message if neither can. */
export function parseTokens(tokens: readonly Token[]): Parsed | string {
  const names = new Map<string, string>();
  const sql = render(tokens, names);
  let error = 'empty statement';
  for (const database of ['MySQL', 'MariaDB'] satisfies Grammar[]) {
    let r: { tableList: string[]; ast: unknown };
    try {
      r = grammar(database).parse(sql, { database });
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
      continue;
    }
    const asts = Array.isArray(r.ast) ? r.ast : [r.ast];
    const ast: unknown = asts[0];
    if (asts.length !== 1 || !isNode(ast)) return 'the parser read more than one statement';
    const ctes = cteNames(ast);
    const tables = new Set<string>();
    const add = (db: string | null, table: string): void => {
      const t = (names.get(table) ?? table.replace(/``/g, '`')).toLowerCase();
      const d = db ? (names.get(db) ?? db.replace(/``/g, '`')).toLowerCase() : null;
      if (!d && ctes.has(t)) return;
      tables.add(d ? `${d}.${t}` : t);
    };
    for (const entry of r.tableList) {
      const [, db, table] = entry.split('::');
      if (table && table !== 'null') add(db && db !== 'null' ? db : null, table); // SHOW TABLES lists `show::null::null`
    }
    // Its list misses some (the tables of a parenthesised join): every FROM-like entry of the tree counts too,
    // but for the targets of a multi-table DELETE, which may be aliases (its list resolves them).
    visit(ast.type === 'delete' ? { ...ast, table: null } : ast, (o) => {
      if (o.type !== 'column_ref' && 'db' in o && typeof o.table === 'string') add(typeof o.db === 'string' ? o.db : null, o.table);
    });
    return { ast, tables: [...tables] };
  }
  return error;
}

/** Split at depth-0 operators of one precedence level (not inside parentheses or CASE … END, not BETWEEN's AND). */
function splitAt(tokens: readonly Token[], ops: readonly string[]): Token[][] {
  const parts: Token[][] = [[]];
  let depth = 0;
  let cases = 0;
  let between = 0;
  for (const t of tokens) {
    const top = depth === 0 && cases === 0;
    if (isPunct(t, '(')) depth++;
    else if (isPunct(t, ')')) depth--;
    else if (depth === 0 && isWord(t, 'CASE')) cases++;
    else if (depth === 0 && cases > 0 && isWord(t, 'END')) cases--;
    else if (top && isWord(t, 'BETWEEN')) between++;
    else if (top && (t.type === 'word' || t.type === 'punct') && ops.includes(t.value)) {
      if (t.value === 'AND' && between > 0) between--;
      else {
        parts.push([]);
        continue;
      }
    }
    parts[parts.length - 1]!.push(t);
  }
  return parts;
}

/** Index of the `)` matching the `(` at `i`, or -1. */
export function closing(tokens: readonly Token[], i: number): number {
  let depth = 0;
  for (let k = i; k < tokens.length; k++) {
    if (isPunct(tokens[k], '(')) depth++;
    else if (isPunct(tokens[k], ')') && --depth === 0) return k;
  }
  return -1;
}

/**
 * Can this WHERE condition (its tokens, WHERE excluded) hold for every row? True for constant conditions
 * (`1`, `true`, `'a'='a'`, `2>1`, `RAND()<2`), the same thing on both sides (`id=id`), `LIKE '%'`, a disjunction
 * with one such branch, and whatever it cannot read with confidence (XOR, arithmetic on comparisons, CASE, a
 * leaf the parser rejects). A condition on a column that happens to hold for every row (`id > 0`) is not seen.
 */
export function unrestricted(tokens: readonly Token[], outer: ReadonlySet<string>): boolean {
  if (tokens.length === 0) return true;
  const ors = splitAt(tokens, ['OR', '||']);
  if (ors.length > 1) return ors.some((p) => unrestricted(p, outer));
  if (splitAt(tokens, ['XOR']).length > 1) return true;
  const ands = splitAt(tokens, ['AND', '&&']);
  if (ands.length > 1) return ands.every((p) => unrestricted(p, outer));
  if (isWord(tokens[0], 'NOT')) return unrestricted(tokens.slice(1), outer); // NOT of a tautology or contradiction
  if (isPunct(tokens[0], '(') && closing(tokens, 0) === tokens.length - 1) return unrestricted(tokens.slice(1, -1), outer);
  const p = parseTokens([{ type: 'word', text: 'SELECT', value: 'SELECT', start: -2, end: -1 }, ...tokens]);
  if (typeof p === 'string') return true;
  const cols = p.ast.columns;
  if (p.ast.type !== 'select' || p.ast.from || !Array.isArray(cols) || cols.length !== 1) return true;
  return leafUnrestricted((cols[0] as AstNode).expr, outer);
}

/** Names (tables and aliases, lower-cased) of FROM-like entries. */
export function fromNames(entries: unknown): string[] {
  const out: string[] = [];
  for (const f of Array.isArray(entries) ? entries : []) {
    if (!isNode(f)) continue;
    if (typeof f.table === 'string') out.push(f.table.toLowerCase());
    if (typeof f.as === 'string') out.push(f.as.toLowerCase());
  }
  return out;
}

const COMPARISONS = new Set([
  '=',
  '!=',
  '<>',
  '<',
  '>',
  '<=',
  '>=',
  '<=>',
  'IS',
  'IS NOT',
  'LIKE',
  'NOT LIKE',
  'REGEXP',
  'NOT REGEXP',
  'RLIKE',
  'NOT RLIKE',
  'IN',
  'NOT IN',
  'BETWEEN',
  'NOT BETWEEN',
]);
const LOGICAL = new Set(['AND', 'OR', 'XOR', '&&', '||']);
const CONDITIONALS = new Set(['IF', 'IFNULL', 'COALESCE', 'NULLIF', 'GREATEST', 'LEAST']);

const op = (e: AstNode): string => String(e.operator ?? '').toUpperCase();

/**
 * Does the condition depend on the row? A column of the statement's own tables does; inside a subquery only a
 * column qualified with one of the outer tables does (a correlation): an uncorrelated subquery is a constant.
 */
function mentionsColumn(e: unknown, outer: ReadonlySet<string>): boolean {
  const walk = (n: unknown, inner: ReadonlySet<string> | null): boolean => {
    if (Array.isArray(n)) return n.some((x) => walk(x, inner));
    if (!isNode(n)) return false;
    if (n.type === 'column_ref' && n.column !== '*') {
      if (!inner) return true;
      const q = typeof n.table === 'string' ? n.table.toLowerCase() : null;
      return q !== null && outer.has(q) && !inner.has(q);
    }
    // With ANSI_QUOTES a "double-quoted" word is a column: count it as one.
    if (n.type === 'double_quote_string') return !inner;
    if (n.type === 'select') {
      const names = new Set([...(inner ?? []), ...fromNames(n.from)]);
      return Object.values(n).some((v) => walk(v, names));
    }
    return Object.values(n).some((v) => walk(v, inner));
  };
  return walk(e, null);
}

function isBoolean(e: unknown): boolean {
  if (!isNode(e)) return false;
  if (e.type === 'binary_expr') return COMPARISONS.has(op(e)) || LOGICAL.has(op(e));
  return e.type === 'unary_expr';
}

/** Canonical form for comparing two sides: no locations or parentheses, names lower-cased, "x" read as a column. */
function canonical(e: unknown): string {
  return JSON.stringify(e, (k, v: unknown) => {
    if (k === 'parentheses' || k === 'collate' || k === 'loc') return undefined;
    if (isNode(v) && v.type === 'double_quote_string') return { type: 'column_ref', table: null, column: String(v.value).toLowerCase() };
    if ((k === 'column' || k === 'table' || k === 'db') && typeof v === 'string') return v.toLowerCase();
    return v;
  });
}

/** The same column on both sides: `id = id`, `t.id = id`, `"id" = id`. */
function sameColumn(a: unknown, b: unknown): boolean {
  const col = (x: unknown): { t: string | null; c: string } | null => {
    if (!isNode(x)) return null;
    if (x.type === 'double_quote_string') return { t: null, c: String(x.value).toLowerCase() };
    return x.type === 'column_ref' ? { t: typeof x.table === 'string' ? x.table.toLowerCase() : null, c: String(x.column).toLowerCase() } : null;
  };
  const l = col(a);
  const r = col(b);
  return !!l && !!r && l.c === r.c && (l.t === null || r.t === null || l.t === r.t);
}

function leafUnrestricted(e: unknown, outer: ReadonlySet<string>): boolean {
  if (!isNode(e) || !mentionsColumn(e, outer)) return true;
  switch (e.type) {
    case 'column_ref':
    case 'double_quote_string':
      return false;
    case 'function': {
      const parts = isNode(e.name) && Array.isArray(e.name.name) ? (e.name.name as AstNode[]) : [];
      const name = String(parts[parts.length - 1]?.value ?? '').toUpperCase();
      return CONDITIONALS.has(name);
    }
    case 'unary_expr':
      return leafUnrestricted(e.expr, outer);
    case 'binary_expr': {
      if (!COMPARISONS.has(op(e))) return true; // arithmetic on a condition, or a logical operator the split missed
      if (isBoolean(e.left) || isBoolean(e.right)) return true; // `(id = 1) >= 0`
      if (canonical(e.left) === canonical(e.right) || sameColumn(e.left, e.right)) return true;
      const r = e.right;
      return op(e) === 'LIKE' && isNode(r) && typeof r.value === 'string' && /^%+$/.test(r.value);
    }
    default:
      return true;
  }
}
