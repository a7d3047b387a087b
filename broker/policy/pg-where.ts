// Does an UPDATE/DELETE WHERE clause restrict anything? Constant expressions over literals are evaluated
// exactly (never approximately: a wrong "constantly false" would turn a mass DELETE into a write).
import { isNode, list, names, node, sval, type Node } from './pg-ast.js';

type Val = { t: 'num'; n: bigint; d: bigint; int: boolean } | { t: 'str'; s: string } | { t: 'bool'; b: boolean } | { t: 'null' };

const NULL: Val = { t: 'null' };
const bool = (b: boolean): Val => ({ t: 'bool', b });

/**
 * True when the WHERE clause lets every row through: it is missing, it is provably constantly true
 * (`1=1`, `'a'='a'`, `NOT false`, `x = x`, `x IS NOT NULL OR true`, `2>1`, `'t'::bool`), or it is not
 * constant but never mentions the target table (`WHERE now() > '2000-01-01'`, `WHERE random() >= 0`,
 * `WHERE EXISTS (SELECT 1 FROM u)`, `UPDATE t … FROM u WHERE u.x = 1`): such a condition keeps all rows
 * or none. A provably constantly false or NULL condition (`WHERE false`, `WHERE 1=0`) touches nothing.
 * `targets` are the names the statement's target can be referred to by (table, schema.table, alias).
 */
export function unrestricted(where: unknown, targets: ReadonlySet<string>): boolean {
  if (where === undefined || where === null) return true;
  const v = truth(evaluate(where, targets));
  if (v !== undefined) return v === true;
  return !mentionsTarget(where, targets);
}

/** Truth of a value in a boolean context: an untyped literal such as 'yes' is read as a boolean there. */
function truth(v: Val | undefined): boolean | null | undefined {
  if (!v) return undefined;
  if (v.t === 'bool') return v.b;
  if (v.t === 'null') return null;
  if (v.t === 'str') return parseBool(v.s);
  return undefined; // a number as a condition is an error upstream; prove nothing
}

/** PostgreSQL's parse_bool: t/tr/tru/true, y/ye/yes, on, 1 and f/…/false, n/no, of/off, 0, any case, trimmed. */
function parseBool(s: string): boolean | undefined {
  const x = s.trim().toLowerCase();
  if (!x) return undefined;
  if ('true'.startsWith(x) || 'yes'.startsWith(x) || x === 'on' || x === '1') return true;
  if ('false'.startsWith(x) || 'no'.startsWith(x) || x === 'of' || x === 'off' || x === '0') return false;
  return undefined;
}

function num(n: bigint, d: bigint, int: boolean): Val {
  if (d < 0n) [n, d] = [-n, -d];
  return { t: 'num', n, d, int };
}

/** A numeric literal's exact value ('1.5e3'); undefined for anything else or an absurd exponent. */
function parseNumber(text: string, int: boolean): Val | undefined {
  const m = /^\s*([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/.exec(text);
  if (!m || (!m[2] && !m[3])) return undefined;
  const frac = m[3] ?? '';
  const exp = Number(m[4] ?? '0') - frac.length;
  if (Math.abs(exp) > 400) return undefined;
  let n = BigInt((m[2] || '0') + frac) * (m[1] === '-' ? -1n : 1n);
  let d = 1n;
  if (exp >= 0) n *= 10n ** BigInt(exp);
  else d = 10n ** BigInt(-exp);
  return num(n, d, int && d === 1n);
}

function constant(c: Node): Val | undefined {
  if (c.isnull) return NULL;
  if (c.ival !== undefined) {
    const i = node(c.ival)?.ival;
    return num(BigInt(typeof i === 'number' ? i : 0), 1n, true);
  }
  if (c.fval !== undefined) {
    const f = node(c.fval)?.fval;
    return typeof f === 'string' ? parseNumber(f, /^\d+$/.test(f)) : undefined;
  }
  if (c.sval !== undefined) {
    const s = node(c.sval)?.sval;
    return { t: 'str', s: typeof s === 'string' ? s : '' };
  }
  if (c.boolval !== undefined) return bool(node(c.boolval)?.boolval === true);
  return undefined; // bit strings
}

function cast(v: Val | undefined, typeName: Node | undefined): Val | undefined {
  if (!v || !typeName || list(typeName.typmods).length || list(typeName.arrayBounds).length) return undefined;
  if (v.t === 'null') return NULL;
  const type = names(typeName.names)?.pop()?.toLowerCase();
  switch (type) {
    case 'bool':
    case 'boolean': {
      if (v.t === 'bool') return v;
      if (v.t === 'str') {
        const b = parseBool(v.s);
        return b === undefined ? undefined : bool(b);
      }
      if (v.t === 'num' && v.int) return bool(v.n !== 0n);
      return undefined;
    }
    case 'int2':
    case 'int4':
    case 'int8':
    case 'int':
    case 'integer':
    case 'smallint':
    case 'bigint':
      if (v.t === 'num' && v.d === 1n) return num(v.n, 1n, true);
      if (v.t === 'str' && /^\s*[+-]?\d+\s*$/.test(v.s)) return parseNumber(v.s, true);
      return undefined;
    case 'numeric':
    case 'decimal':
      if (v.t === 'num') return num(v.n, v.d, false);
      if (v.t === 'str') return parseNumber(v.s, false);
      return undefined;
    case 'text':
    case 'varchar':
      return v.t === 'str' ? v : undefined;
    default:
      return undefined; // char(n) pads, floats round, other types have their own equality: prove nothing
  }
}

function cmp(a: Val, b: Val): number | undefined {
  if (a.t === 'num' && b.t === 'num') {
    const l = a.n * b.d;
    const r = b.n * a.d;
    return l < r ? -1 : l > r ? 1 : 0;
  }
  if (a.t === 'bool' && b.t === 'bool') return Number(a.b) - Number(b.b);
  return undefined;
}

function compare(op: string, a: Val, b: Val): Val | undefined {
  if (a.t === 'null' || b.t === 'null') return NULL;
  if (a.t === 'str' && b.t === 'str') {
    // Equality of two literals under a deterministic collation is byte equality; ordering depends on the collation.
    if (op === '=') return bool(a.s === b.s);
    if (op === '<>' || op === '!=') return bool(a.s !== b.s);
    return undefined;
  }
  const c = cmp(a, b);
  if (c === undefined) return undefined;
  switch (op) {
    case '=':
      return bool(c === 0);
    case '<>':
    case '!=':
      return bool(c !== 0);
    case '<':
      return bool(c < 0);
    case '>':
      return bool(c > 0);
    case '<=':
      return bool(c <= 0);
    case '>=':
      return bool(c >= 0);
    default:
      return undefined;
  }
}

function arithmetic(op: string, a: Val, b: Val): Val | undefined {
  if (a.t === 'null' || b.t === 'null') return NULL;
  if (op === '||') return a.t === 'str' && b.t === 'str' ? { t: 'str', s: a.s + b.s } : undefined;
  if (a.t !== 'num' || b.t !== 'num') return undefined;
  const int = a.int && b.int;
  switch (op) {
    case '+':
      return num(a.n * b.d + b.n * a.d, a.d * b.d, int);
    case '-':
      return num(a.n * b.d - b.n * a.d, a.d * b.d, int);
    case '*':
      return num(a.n * b.n, a.d * b.d, int);
    case '/':
    case '%':
      // Integer division truncates (BigInt does too); numeric division rounds to a scale: prove nothing.
      if (!int || b.n === 0n) return undefined;
      return num(op === '/' ? a.n / b.n : a.n % b.n, 1n, true);
    default:
      return undefined;
  }
}

/** Keys that only say where something was written. */
const POSITION = new Set(['location', 'name_location', 'list_start', 'list_end', 'rexpr_list_start', 'rexpr_list_end']);

/** A column reference's fields, without a qualifier that names the target (`t.x` and `x` are the same column). */
function columnFields(ref: Node, targets: ReadonlySet<string>): unknown[] {
  const fields = list(ref.fields);
  const qual = names(fields.slice(0, -1));
  return qual?.length && targets.has(qual.join('.')) ? fields.slice(-1) : fields;
}

/** Are two expressions the same as written (positions aside, target qualifiers aside)? */
function same(a: unknown, b: unknown, targets: ReadonlySet<string>): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i], targets));
  if (!isNode(a) || !isNode(b) || Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => !POSITION.has(k));
  const kb = Object.keys(b).filter((k) => !POSITION.has(k));
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!(k in b)) return false;
    // Anything that may differ between two evaluations is never "the same": random(), (SELECT …).
    if (k === 'FuncCall' || k === 'SubLink') return false;
    if (k === 'ColumnRef' && isNode(a[k]) && isNode(b[k])) {
      if (!same(columnFields(a[k], targets), columnFields(b[k], targets), targets)) return false;
    } else if (!same(a[k], b[k], targets)) return false;
  }
  return true;
}

/** `x = x`: the same expression on both sides, with nothing volatile in it (`random() = random()` is not). */
function sameSides(l: unknown, r: unknown, targets: ReadonlySet<string>): boolean {
  return l !== undefined && r !== undefined && same(l, r, targets);
}

function and(vals: (Val | undefined)[]): Val | undefined {
  const ts = vals.map(truth);
  if (ts.includes(false)) return bool(false);
  if (ts.includes(undefined)) return undefined;
  return ts.includes(null) ? NULL : bool(true);
}

function or(vals: (Val | undefined)[]): Val | undefined {
  const ts = vals.map(truth);
  if (ts.includes(true)) return bool(true);
  if (ts.includes(undefined)) return undefined;
  return ts.includes(null) ? NULL : bool(false);
}

/** The constant value of an expression, or undefined when it is not provably constant. */
function evaluate(v: unknown, targets: ReadonlySet<string>): Val | undefined {
  const n = node(v);
  if (!n) return undefined;
  const ev = (x: unknown) => evaluate(x, targets);
  const c = node(n.A_Const);
  if (c) return constant(c);
  const tc = node(n.TypeCast);
  if (tc) return cast(ev(tc.arg), node(tc.typeName));
  const b = node(n.BoolExpr);
  if (b) {
    const args = list(b.args);
    if (b.boolop === 'NOT_EXPR') {
      const t = truth(ev(args[0]));
      return t === undefined ? undefined : t === null ? NULL : bool(!t);
    }
    if (b.boolop === 'AND_EXPR') return and(args.map(ev));
    if (b.boolop === 'OR_EXPR') {
      // `x IS NULL OR x IS NOT NULL` is true whatever x is.
      const tests = args.map((a) => node(node(a)?.NullTest)).filter((t): t is Node => !!t);
      const isNull = tests.filter((t) => t.nulltesttype === 'IS_NULL');
      const notNull = tests.filter((t) => t.nulltesttype === 'IS_NOT_NULL');
      if (isNull.some((a) => notNull.some((b) => sameSides(a.arg, b.arg, targets)))) return bool(true);
      return or(args.map(ev));
    }
    return undefined;
  }
  const nt = node(n.NullTest);
  if (nt) {
    const a = ev(nt.arg);
    if (!a) return undefined;
    return bool((a.t === 'null') === (nt.nulltesttype === 'IS_NULL'));
  }
  const bt = node(n.BooleanTest);
  if (bt) {
    const t = truth(ev(bt.arg));
    if (t === undefined) return undefined;
    switch (bt.booltesttype) {
      case 'IS_TRUE':
        return bool(t === true);
      case 'IS_NOT_TRUE':
        return bool(t !== true);
      case 'IS_FALSE':
        return bool(t === false);
      case 'IS_NOT_FALSE':
        return bool(t !== false);
      case 'IS_UNKNOWN':
        return bool(t === null);
      case 'IS_NOT_UNKNOWN':
        return bool(t !== null);
      default:
        return undefined;
    }
  }
  const co = node(n.CoalesceExpr);
  if (co) {
    for (const a of list(co.args)) {
      const x = ev(a);
      if (!x) return undefined;
      if (x.t !== 'null') return x;
    }
    return NULL;
  }
  const e = node(n.A_Expr);
  if (e) return evaluateExpr(e, targets);
  return undefined;
}

function evaluateExpr(e: Node, targets: ReadonlySet<string>): Val | undefined {
  const ev = (x: unknown) => evaluate(x, targets);
  const op = names(e.name)?.join('.') ?? '';
  switch (e.kind) {
    case 'AEXPR_OP': {
      if (e.lexpr === undefined) {
        // Prefix + and -.
        const r = ev(e.rexpr);
        if (r?.t === 'null') return NULL;
        if (r?.t !== 'num') return undefined;
        if (op === '-') return num(-r.n, r.d, r.int);
        return op === '+' ? r : undefined;
      }
      if (['=', '<>', '!=', '<', '>', '<=', '>='].includes(op) && sameSides(e.lexpr, e.rexpr, targets)) {
        return bool(['=', '<=', '>='].includes(op)); // x = x: true for every row (bar NULLs)
      }
      const l = ev(e.lexpr);
      const r = l && ev(e.rexpr);
      if (!l || !r) return undefined;
      return ['=', '<>', '!=', '<', '>', '<=', '>='].includes(op) ? compare(op, l, r) : arithmetic(op, l, r);
    }
    case 'AEXPR_DISTINCT':
    case 'AEXPR_NOT_DISTINCT': {
      const distinct = e.kind === 'AEXPR_DISTINCT';
      if (sameSides(e.lexpr, e.rexpr, targets)) return bool(!distinct);
      const l = ev(e.lexpr);
      const r = l && ev(e.rexpr);
      if (!l || !r) return undefined;
      if (l.t === 'null' || r.t === 'null') return bool((l.t === r.t) !== distinct);
      const eq = truth(compare('=', l, r));
      return eq === undefined || eq === null ? undefined : bool(eq !== distinct);
    }
    case 'AEXPR_IN': {
      const l = ev(e.lexpr);
      if (!l) return undefined;
      const items = list(node(node(e.rexpr)?.List)?.items).map(ev);
      const negated = op === '<>';
      const each = items.map((r) => (r ? compare(negated ? '<>' : '=', l, r) : undefined));
      return negated ? and(each) : or(each);
    }
    case 'AEXPR_BETWEEN':
    case 'AEXPR_NOT_BETWEEN': {
      const v = ev(e.lexpr);
      const [lo, hi] = list(node(node(e.rexpr)?.List)?.items).map(ev);
      if (!v || !lo || !hi) return undefined;
      const inside = and([compare('>=', v, lo), compare('<=', v, hi)]);
      if (e.kind === 'AEXPR_BETWEEN' || !inside) return inside;
      const t = truth(inside);
      return t === undefined ? undefined : t === null ? NULL : bool(!t);
    }
    default:
      return undefined;
  }
}

/** Does the condition refer to a column of the target (or to its current cursor row)? */
function mentionsTarget(v: unknown, targets: ReadonlySet<string>): boolean {
  if (Array.isArray(v)) return v.some((x) => mentionsTarget(x, targets));
  if (!isNode(v)) return false;
  for (const [k, x] of Object.entries(v)) {
    if (k === 'CurrentOfExpr') return true;
    if (k === 'ColumnRef' && isNode(x)) {
      const fields = list(x.fields);
      // Unqualified: a column of the target as far as we can tell (inside a subquery, maybe correlated).
      if (fields.length <= 1) return true;
      const qual = fields.slice(0, -1).map(sval);
      if (qual.every((q) => q !== undefined) && targets.has(qual.join('.'))) return true;
      continue;
    }
    if (mentionsTarget(x, targets)) return true;
  }
  return false;
}
