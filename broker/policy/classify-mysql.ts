// Classify MySQL / MariaDB statements. The text is lexed once per way a server could read its versioned comments
// (`/*!50000 DROP TABLE t */` runs on every server since 5.0, `/*!99999 … */` on none yet, `/*M!… */` only on
// MariaDB), and the result holds every statement any of those servers would run: the newest MariaDB's reading in
// order, then those of the others that differ in kinds or tables. So `DELETE FROM t /*!99999 WHERE id = 1 */` is
// both a write (where the comment runs) and destructive (where it does not).
//
// In a session (classifyMysqlSession) the server is known — its greeting said which version it is — so the text
// is read as that server reads it (`/*M!999999\- enable the sandbox mode */` is a comment to MariaDB 10.11), and
// the statements are read in order against what the session knows and what the statements before them change
// (mysql-running.ts): settings, user variables, statements PREPAREd by name.
import type { Classification, ClassifiedStatement, Kind } from '../types.js';
import { KINDS } from '../types.js';
import { Lru } from './lru.js';
import { serverReadings } from './mysql-env.js';
import { lex, readings, split, type Piece } from './mysql-lexer.js';
import { hasChanges, mergeChanges, noChanges, Running, type Changes, type MysqlEnv } from './mysql-running.js';
import { classifyTokens } from './mysql-statements.js';
import { isPunct, isWord, merge, opaque, unparsed, W, type Ctx, type Verdict } from './mysql-tokens.js';

/** How deep PREPARE … FROM '…' may nest inside itself before it is unknown. */
const MAX_DEPTH = 3;

const severity = (k: Kind): number => KINDS.indexOf(k);

function classifyPiece(piece: Piece, depth: number, run: Running): Verdict {
  const ctx: Ctx = {
    inner: (tokens) => classifyTokens(tokens, ctx),
    // SQL held in a string runs later (EXECUTE): read as this server lexes it, knowing nothing of the state then.
    text: (sql) => {
      if (depth >= MAX_DEPTH) return opaque('dynamic SQL nested too deep');
      const r = classifyText(sql, depth + 1, run.env, { ask: run.opts.ask, blind: true });
      const c = r.classification;
      const v = merge(
        ...c.statements.map(
          (s): Verdict => ({ kinds: s.kinds, tables: s.tables, ...(s.calls ? { calls: s.calls } : {}), ...(s.reason ? { reason: s.reason } : {}) }),
        ),
      );
      if (c.statements.length === 0) return unparsed('an empty prepared statement');
      if (r.changes.sqlMode || r.changes.charset) v.settings = true;
      return c.error ? { ...v, error: c.error } : v;
    },
    // A routine's, trigger's or event's body runs later, in whatever state the session is in then.
    later: (tokens) => {
      const body: Ctx = { ...ctx, state: new Running(run.env, { ask: run.opts.ask, blind: true }) };
      body.inner = (ts) => classifyTokens(ts, body);
      return classifyTokens(tokens, body);
    },
    state: run,
  };
  try {
    return classifyTokens(piece.tokens, ctx);
  } catch (e) {
    // Pathological input (nesting deep enough to overflow the stack): fail closed.
    return unparsed(e instanceof Error ? e.message : String(e));
  }
}

/** Whether a statement may assign user variables in ways not read here: stored code (functions, triggers), `:=`, INTO @v. */
function mayAssignVariables(piece: Piece, v: Verdict): boolean {
  if (v.kinds.some((k) => k !== 'read') || (v.calls?.length ?? 0) > 0) return true;
  const ts = piece.tokens;
  const verb = W(ts[0]);
  if (verb === 'SET') return false; // it says which it sets
  if (verb === 'GET' || verb === 'CALL' || verb === 'EXECUTE') return true;
  return ts.some((t, k) => isPunct(t, ':=') || (isWord(t, 'INTO') && isPunct(ts[k + 1], '@')));
}

interface TextResult {
  classification: Classification;
  /** What the statements change, every reading's together. */
  changes: Changes;
  /** Whether any statement read or set the session's state: the result then holds for this state only. */
  stateful: boolean;
}

function classifyText(sql: string, depth: number, env: MysqlEnv | null, opts: Running['opts']): TextResult {
  const rs = env?.server ? serverReadings(env.server) : readings(sql);
  if (!rs) {
    const error = 'too many different versioned comments (/*!NNNNN … */)';
    return { classification: { statements: [{ sql: sql.trim(), kinds: ['unknown'], tables: [] }], error }, changes: noChanges(), stateful: false };
  }
  const statements: ClassifiedStatement[] = [];
  const seen = new Set<string>();
  const lexedTexts = new Set<string>();
  const memo = new Map<string, Verdict>();
  let error: string | undefined;
  let changes: Changes | null = null;
  let stateful = false;
  rs.forEach((reading, n) => {
    const lexed = lex(sql, reading);
    const key = `${lexed.error ?? ''}\0${lexed.text}`;
    if (lexedTexts.has(key)) return;
    lexedTexts.add(key);
    const run = new Running(env, opts);
    const { pieces, rest } = split(lexed);
    const out: ClassifiedStatement[] = [];
    for (const piece of pieces) {
      let v = memo.get(piece.text);
      if (run.doubt) {
        v = opaque(
          `it comes after a SET of ${run.doubt} in the same request, whose new value the broker learns from the server only once that SET has run: send it on its own`,
        );
      } else if (!v) {
        const before = run.touched;
        v = classifyPiece(piece, depth, run);
        if (run.touched === before) memo.set(piece.text, v); // read the same whatever the session holds
      }
      if (mayAssignVariables(piece, v)) run.anyVariable();
      error ??= v.error;
      const kinds = [...new Set(v.kinds)].sort((a, b) => severity(a) - severity(b));
      const st: ClassifiedStatement = { sql: piece.text, kinds: kinds.length ? kinds : ['unknown'], tables: [...new Set(v.tables)] };
      if (v.calls?.length) st.calls = v.calls;
      if (v.reason) st.reason = v.reason;
      out.push(st);
    }
    if (rest) {
      error ??= lexed.error;
      out.push({ sql: rest.text, kinds: ['unknown'], tables: [] });
    }
    stateful ||= run.touched > 0 || run.doubt !== null;
    changes = changes ? mergeChanges(changes, run.changes) : run.changes;
    for (const st of out) {
      const calls = (st.calls ?? []).map((r) => `${r.schema ?? ''}.${r.name}/${r.args ?? ''}`);
      const k = `${st.kinds.join(',')}|${[...st.tables].sort().join(',')}|${calls.sort().join(',')}`;
      // The first reading lists every statement; the others add only what would be decided differently.
      if (n === 0 || !seen.has(k)) statements.push(st);
      seen.add(k);
    }
  });
  return { classification: error ? { statements, error } : { statements }, changes: changes ?? noChanges(), stateful };
}

/** Classify a MySQL/MariaDB SQL string: one entry per statement, each with every kind that applies. */
export function classifyMysql(sql: string): Classification {
  return classifyText(sql, 0, null, { ask: false }).classification;
}

export interface SessionClassification {
  classification: Classification;
  /** What the request changes in the session once it has run; null: nothing. */
  changes: Changes | null;
}

/** What a statement that may set any user variable changes (shared: changes are never modified once made). */
const ANY_VARIABLE: Changes = { ...noChanges(), allVars: true };

/** Texts whose reading did not depend on the session's state, per server: their classification, and whether they may set any variable. */
const sessionCaches = new Map<string, Lru<string, { classification: Classification; allVars: boolean }>>();

/**
 * Classify a request of a session whose engine tells the server's version and asks the server for a setting the
 * broker cannot compute (so a SET of sql_mode to such a value runs, and what follows it in the text is unknown).
 */
export function classifyMysqlSession(sql: string, env: MysqlEnv): SessionClassification {
  if (env.unreadable) return { classification: { statements: [{ sql: sql.trim(), kinds: ['unknown'], tables: [], reason: env.unreadable }] }, changes: null };
  const server = env.server ? `${env.server.family}${env.server.version}` : '*';
  let cache = sessionCaches.get(server);
  if (!cache) sessionCaches.set(server, (cache = new Lru(5000)));
  const hit = cache.get(sql);
  if (hit) return { classification: hit.classification, changes: hit.allVars ? ANY_VARIABLE : null };
  const r = classifyText(sql, 0, env, { ask: true });
  if (!r.stateful) cache.set(sql, { classification: r.classification, allVars: r.changes.allVars });
  return { classification: r.classification, changes: hasChanges(r.changes) ? r.changes : null };
}
