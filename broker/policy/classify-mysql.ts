// Classify MySQL / MariaDB statements. The text is lexed once per way a server could read its versioned comments
// (`/*!50000 DROP TABLE t */` runs on every server since 5.0, `/*!99999 … */` on none yet, `/*M!… */` only on
// MariaDB), and the result holds every statement any of those servers would run: the newest MariaDB's reading in
// order, then those of the others that differ in kinds or tables. So `DELETE FROM t /*!99999 WHERE id = 1 */` is
// both a write (where the comment runs) and destructive (where it does not).
import type { Classification, ClassifiedStatement, Kind } from '../types.js';
import { KINDS } from '../types.js';
import { lex, readings, split, type Piece } from './mysql-lexer.js';
import { classifyTokens } from './mysql-statements.js';
import { merge, opaque, unparsed, type Ctx, type Verdict } from './mysql-tokens.js';

/** How deep PREPARE … FROM '…' may nest inside itself before it is unknown. */
const MAX_DEPTH = 3;

const severity = (k: Kind): number => KINDS.indexOf(k);

function classifyPiece(piece: Piece, depth: number): Verdict {
  const ctx: Ctx = {
    inner: (tokens) => classifyTokens(tokens, ctx),
    text: (sql) => {
      if (depth >= MAX_DEPTH) return opaque();
      const c = classifyText(sql, depth + 1);
      const v = merge(...c.statements.map((s) => ({ kinds: s.kinds, tables: s.tables, calls: s.calls })));
      if (c.statements.length === 0) return unparsed('an empty prepared statement');
      return c.error ? { ...v, error: c.error } : v;
    },
  };
  try {
    return classifyTokens(piece.tokens, ctx);
  } catch (e) {
    // Pathological input (nesting deep enough to overflow the stack): fail closed.
    return unparsed(e instanceof Error ? e.message : String(e));
  }
}

function classifyText(sql: string, depth: number): Classification {
  const rs = readings(sql);
  if (!rs) {
    return { statements: [{ sql: sql.trim(), kinds: ['unknown'], tables: [] }], error: 'too many different versioned comments (/*!NNNNN … */)' };
  }
  const statements: ClassifiedStatement[] = [];
  const seen = new Set<string>();
  const lexedTexts = new Set<string>();
  const memo = new Map<string, Verdict>();
  let error: string | undefined;
  rs.forEach((reading, n) => {
    const lexed = lex(sql, reading);
    const key = `${lexed.error ?? ''}\0${lexed.text}`;
    if (lexedTexts.has(key)) return;
    lexedTexts.add(key);
    const { pieces, rest } = split(lexed);
    const out: ClassifiedStatement[] = [];
    for (const piece of pieces) {
      let v = memo.get(piece.text);
      if (!v) memo.set(piece.text, (v = classifyPiece(piece, depth)));
      error ??= v.error;
      const kinds = [...new Set(v.kinds)].sort((a, b) => severity(a) - severity(b));
      const st: ClassifiedStatement = { sql: piece.text, kinds: kinds.length ? kinds : ['unknown'], tables: [...new Set(v.tables)] };
      if (v.calls?.length) st.calls = v.calls;
      out.push(st);
    }
    if (rest) {
      error ??= lexed.error;
      out.push({ sql: rest.text, kinds: ['unknown'], tables: [] });
    }
    for (const st of out) {
      const calls = (st.calls ?? []).map((r) => `${r.schema ?? ''}.${r.name}/${r.args ?? ''}`);
      const k = `${st.kinds.join(',')}|${[...st.tables].sort().join(',')}|${calls.sort().join(',')}`;
      // The first reading lists every statement; the others add only what would be decided differently.
      if (n === 0 || !seen.has(k)) statements.push(st);
      seen.add(k);
    }
  });
  return error ? { statements, error } : { statements };
}

/** Classify a MySQL/MariaDB SQL string: one entry per statement, each with every kind that applies. */
export function classifyMysql(sql: string): Classification {
  return classifyText(sql, 0);
}
