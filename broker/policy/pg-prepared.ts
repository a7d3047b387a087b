// PostgreSQL prepared statements, as one session sees them: `EXECUTE q(…)` is what was prepared as q. The
// classifier marks PREPARE / EXECUTE / DEALLOCATE / DISCARD ALL (ClassifiedStatement.prepared); the session keeps
// what each name may hold (broker/session-postgres.ts) and this substitutes it, purely: an EXECUTE takes the kinds,
// tables, calls, operators and casts of what it runs (then refined against the catalog as any statement is), plus
// those of its parameter expressions. A name the session never saw prepared stays unknown, saying so.
//
// Within one query string the statements run in order and stop at the first error, so what a statement prepares or
// deallocates holds exactly for the statements after it in the same string.
import type { Classification, ClassifiedStatement, Kind } from '../types.js';
import { KINDS } from '../types.js';

/** What a name may hold now: every statement it may be (more than one while it is not known which). */
export interface PreparedNames {
  get(name: string): readonly ClassifiedStatement[] | undefined;
}

/** What running a string does to the session's prepared statements, in order. */
export type PreparedChange = { define: string; st: ClassifiedStatement } | { forget: string | null };

export interface Substituted {
  classification: Classification;
  changes: PreparedChange[];
  /** An EXECUTE was judged by what the session holds: a later execution must be judged again. */
  executes: boolean;
}

const SNIPPET = 120;

function snippet(sql: string): string {
  const one = sql.replace(/\s+/g, ' ');
  return one.length > SNIPPET ? `${one.slice(0, SNIPPET - 1)}…` : one;
}

/** `c` with each EXECUTE of a name the session (or an earlier statement of `c`) prepared replaced by what it runs. */
export function substitutePrepared(c: Classification, known: PreparedNames): Substituted {
  if (c.error || !c.statements.some((st) => st.prepared)) return { classification: c, changes: [], executes: false };
  // What the statements before this one in the string did: a name → its statement, or null once deallocated.
  const local = new Map<string, ClassifiedStatement | null>();
  let allForgotten = false;
  const changes: PreparedChange[] = [];
  let executes = false;
  const statements = c.statements.map((st) => {
    const p = st.prepared;
    if (!p) return st;
    if (p.op === 'prepare') {
      local.set(p.name, st);
      changes.push({ define: p.name, st });
      return st;
    }
    if (p.op === 'forget') {
      if (p.name === null) {
        local.clear();
        allForgotten = true;
      } else local.set(p.name, null);
      changes.push({ forget: p.name });
      return st;
    }
    executes = true;
    const here = local.get(p.name);
    const defs = here !== undefined ? (here ? [here] : []) : allForgotten ? [] : (known.get(p.name) ?? []);
    if (!defs.length) return { ...st, reason: `EXECUTE ${p.name}: no statement ${p.name} was prepared in this session through the broker` };
    return executed(st, p.name, p.args, defs);
  });
  return { classification: { ...c, statements }, changes, executes };
}

/** The EXECUTE `st` of `name`, which holds one of `defs`: what they run, with the parameters' own kinds and calls. */
function executed(st: ClassifiedStatement, name: string, args: readonly Kind[], defs: readonly ClassifiedStatement[]): ClassifiedStatement {
  const one = defs.length === 1 ? defs[0]! : null;
  const merged = one ? { ...one } : union(defs);
  const kinds = new Set<Kind>([...merged.kinds, ...args]);
  const calls = new Map([...(merged.calls ?? []), ...(st.calls ?? [])].map((r) => [`${r.schema ?? ''}|${r.name}|${r.args ?? ''}|${r.maybe ?? ''}`, r]));
  const operators = new Set([...(merged.operators ?? []), ...(st.operators ?? [])]);
  const casts = new Set([...(merged.casts ?? []), ...(st.casts ?? [])]);
  const what = one ? `what this session prepared as ${name} (${snippet(one.sql)})` : `one of the statements this session prepared as ${name}`;
  const out: ClassifiedStatement = {
    ...merged,
    sql: st.sql,
    kinds: KINDS.filter((k) => kinds.has(k)),
    tables: [...new Set([...merged.tables, ...st.tables])],
    reason: `EXECUTE ${name} runs ${what}${merged.reason ? `: ${merged.reason}` : ''}`,
    prepared: st.prepared!,
  };
  if (calls.size) out.calls = [...calls.values()];
  else delete out.calls;
  if (operators.size) out.operators = [...operators];
  else delete out.operators;
  if (casts.size) out.casts = [...casts];
  else delete out.casts;
  return out;
}

/** Several statements a name may be, as one: every kind, table, call of any (no ONLY: a table counts with its descendants). */
function union(defs: readonly ClassifiedStatement[]): ClassifiedStatement {
  const kinds = new Set(defs.flatMap((d) => d.kinds));
  const out: ClassifiedStatement = {
    sql: defs.map((d) => d.sql).join('; '),
    kinds: KINDS.filter((k) => kinds.has(k)),
    tables: [...new Set(defs.flatMap((d) => d.tables))],
  };
  const calls = defs.flatMap((d) => d.calls ?? []);
  const operators = defs.flatMap((d) => d.operators ?? []);
  const casts = defs.flatMap((d) => d.casts ?? []);
  if (calls.length) out.calls = calls;
  if (operators.length) out.operators = [...new Set(operators)];
  if (casts.length) out.casts = [...new Set(casts)];
  const reasons = defs.map((d) => d.reason).filter((r): r is string => !!r);
  if (reasons.length) out.reason = reasons.join('; ');
  return out;
}

/** One statement standing for a whole prepared (protocol-level Parse) text: what executing it by name runs. */
export function asOne(c: Classification): ClassifiedStatement {
  return c.statements.length === 1 ? c.statements[0]! : union(c.statements.length ? c.statements : [{ sql: '', kinds: ['unknown'], tables: [] }]);
}
