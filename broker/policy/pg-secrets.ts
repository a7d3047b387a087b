// pg_subscription is catalog metadata a dump needs (pg_dump reads it), except for one column: subconninfo, the
// connection string to the publisher, which can hold its password. Reading pg_subscription is a `read`, unless the
// statement may read subconninfo — by name, through `*`, a whole-row reference (`s`, `row_to_json(s)`, `s.to_json`),
// a column alias list, a NATURAL join, or a COPY of the whole table — which is `admin`. When in doubt: admin.
//
// pg_dump reads subconninfo only when it connects as a superuser (it dumps subscriptions only then; otherwise it only
// counts them): through a broker whose upstream account is not a superuser, as it should be, a read-only token dumps.
import { isNode, list, names, node, sval, type Node } from './pg-ast.js';

export const SUBSCRIPTION = 'pg_subscription';

/** pg_subscription's columns (PostgreSQL 15–17) and system columns, but subconninfo. */
const HARMLESS = new Set([
  'oid',
  'subdbid',
  'subskiplsn',
  'subname',
  'subowner',
  'subenabled',
  'subbinary',
  'substream',
  'subtwophasestate',
  'subdisableonerr',
  'subpasswordrequired',
  'subrunasowner',
  'subfailover',
  'subslotname',
  'subsynccommit',
  'subpublications',
  'suborigin',
  'tableoid',
  'xmin',
  'xmax',
  'cmin',
  'cmax',
  'ctid',
]);

const answers = new WeakMap<Node, boolean>();

/** Whether statement `top`, which reads pg_subscription, may read its subconninfo column. */
export function readsConninfo(top: Node): boolean {
  let r = answers.get(top);
  if (r === undefined) {
    const ranges = new Set<string>();
    collectRanges(top, ranges);
    r = wholeCopy(top) || suspicious(top, ranges);
    answers.set(top, r);
  }
  return r;
}

/** `COPY pg_subscription TO …` without a column list (`top` is the statement's body), and the like: every column. */
function wholeCopy(top: Node): boolean {
  const rel = node(top.relation);
  const rv = node(rel?.RangeVar) ?? rel;
  return rv?.relname === SUBSCRIPTION && !list(top.attlist).length;
}

function alias(v: unknown): string | undefined {
  const a = node(v);
  return typeof a?.aliasname === 'string' ? a.aliasname : undefined;
}

/** Every name a FROM item can be referred to by: relations, aliases, CTEs. */
function collectRanges(v: unknown, out: Set<string>): void {
  if (Array.isArray(v)) {
    for (const x of v) collectRanges(x, out);
    return;
  }
  if (!isNode(v)) return;
  if (typeof v.relname === 'string') out.add(v.relname);
  if (typeof v.ctename === 'string') out.add(v.ctename);
  const a = alias(v.alias);
  if (a) out.add(a);
  for (const k in v) collectRanges(v[k], out);
}

function suspicious(v: unknown, ranges: ReadonlySet<string>): boolean {
  if (Array.isArray(v)) return v.some((x) => suspicious(x, ranges));
  if (!isNode(v)) return false;
  for (const k in v) {
    const x = v[k];
    if (k === 'A_Star') return true;
    if (k === 'String' && sval(v) === 'subconninfo') return true;
    if (k === 'isNatural' && x === true) return true;
    if (k === 'ColumnRef' && columnRef(x, ranges)) return true;
    if (k === 'RangeVar' && node(x)?.relname === SUBSCRIPTION && list(node(node(x)?.alias)?.colnames).length) return true;
    if (suspicious(x, ranges)) return true;
  }
  return false;
}

/** `s` (a whole row), or `s.f` where f is not one of pg_subscription's harmless columns (perhaps the call f(s)). */
function columnRef(ref: unknown, ranges: ReadonlySet<string>): boolean {
  const fields = names(node(ref)?.fields);
  if (!fields) return true; // a `*` among them, say
  if (fields.length === 1) return ranges.has(fields[0]!);
  return !HARMLESS.has(fields[fields.length - 1]!);
}
