// What a DO block or a function body would run, so that creating (or running) it is classified by its effect.
// PL/pgSQL is compiled with the server's own PL/pgSQL parser (parsePlPgSQLSync); every SQL statement and
// expression in it is classified again as SQL. Dynamic SQL (EXECUTE) is seen through only when it is a literal.
import { parsePlPgSQLSync, parseSync, scanSync } from './pg-parser.js';
import { because, found, isNode, list, literalString, merge, node, oneKind, sval, type Found, type Node, type SubClassify } from './pg-ast.js';

/** Untrusted procedural languages run arbitrary code as the server's OS user. */
const UNTRUSTED = /^(pl\w*u|plsh|plr|c|internal)$/;

function option(options: unknown, name: string): Node | undefined {
  for (const o of list(options)) {
    const d = node(node(o)?.DefElem);
    if (d?.defname === name) return d;
  }
  return undefined;
}

function opaque(language: string, why?: string): Found {
  const f = oneKind('unknown', why ?? `code in language ${language || '(unnamed)'} is not followed`);
  if (UNTRUSTED.test(language)) because(f, 'admin', `language ${language} runs code as the server's operating-system user`);
  return f;
}

/** `DO [LANGUAGE l] $$ body $$`: what the block runs. `text` is the statement's own text. */
export function doBlockEffect(s: Node, text: string, depth: number, sub: SubClassify): Found {
  const lang = sval(option(s.args, 'language')?.arg) ?? 'plpgsql';
  if (lang !== 'plpgsql') return opaque(lang.toLowerCase());
  return plpgsqlEffect(text, depth, sub);
}

/**
 * `CREATE FUNCTION|PROCEDURE … AS 'body'`: what calling it would run. A `BEGIN ATOMIC … END` / `RETURN …` body
 * (sql_body) is already part of the parse tree and is walked by the caller, so it is not handled here.
 */
export function functionBodyEffect(s: Node, text: string, depth: number, sub: SubClassify): Found {
  if (s.sql_body !== undefined) return found();
  const langOpt = option(s.options, 'language');
  const lang = langOpt ? sval(langOpt.arg) : 'sql';
  const body = list(node(node(option(s.options, 'as')?.arg)?.List)?.items).map(sval);
  if (lang === undefined) return opaque('');
  if (lang === 'plpgsql') {
    // The server insists on exactly one AS string; parsePlPgSQLSync aborts the WebAssembly module without one.
    if (body.length !== 1 || body[0] === undefined) return opaque(lang);
    return plpgsqlEffect(text, depth, sub);
  }
  if (lang === 'sql') {
    if (body.length !== 1 || body[0] === undefined) return opaque(lang);
    return sub(body[0], depth + 1);
  }
  return opaque(lang.toLowerCase());
}

/** Compile one CREATE FUNCTION or DO statement as PL/pgSQL and classify everything it would execute. */
function plpgsqlEffect(text: string, depth: number, sub: SubClassify): Found {
  let tree: unknown;
  try {
    tree = parsePlPgSQLSync(text);
  } catch {
    return opaque('plpgsql', 'the PL/pgSQL code does not compile'); // it would not compile upstream either; fail closed
  }
  const funcs = list(node(tree)?.plpgsql_funcs);
  const fn = node(node(funcs[0])?.PLpgSQL_function);
  if (funcs.length !== 1 || !fn || fn.action === undefined) return opaque('plpgsql', 'the PL/pgSQL code does not compile');
  const out = found();
  walk(fn, out, depth, sub);
  return out;
}

/** PL/pgSQL statements whose query is a string computed at run time, and the field that holds it. */
const DYNAMIC: Record<string, string> = {
  PLpgSQL_stmt_dynexecute: 'query',
  PLpgSQL_stmt_dynfors: 'query',
  PLpgSQL_stmt_open: 'dynquery',
  PLpgSQL_stmt_return_query: 'dynquery',
};

function walk(v: unknown, out: Found, depth: number, sub: SubClassify): void {
  if (Array.isArray(v)) {
    for (const x of v) walk(x, out, depth, sub);
    return;
  }
  if (!isNode(v)) return;
  for (const [k, x] of Object.entries(v)) {
    if (k === 'PLpgSQL_expr' && isNode(x)) {
      merge(out, expression(x, depth, sub));
    } else if (DYNAMIC[k] && isNode(x)) {
      for (const [field, y] of Object.entries(x)) {
        if (field === DYNAMIC[k]) merge(out, dynamic(node(node(y)?.PLpgSQL_expr), depth, sub));
        walk(y, out, depth, sub);
      }
    } else {
      walk(x, out, depth, sub);
    }
  }
}

/** `EXECUTE <expr>`: the statement the string holds when it is a literal; unknown otherwise. */
function dynamic(expr: Node | undefined, depth: number, sub: SubClassify): Found {
  const query = typeof expr?.query === 'string' ? expr.query : null;
  const literal = query === null ? null : literalExpression(query);
  return literal === null ? unknown('dynamic SQL: PL/pgSQL EXECUTEs a string that is not a literal') : sub(literal, depth + 1);
}

/** The string a PL/pgSQL expression denotes when it is a constant ('…', $x$…$x$, 'a' || 'b'), else null. */
function literalExpression(query: string): string | null {
  try {
    const stmts = list(node(parseSync(`SELECT ${query}`))?.stmts);
    const sel = node(node(node(stmts[0])?.stmt)?.SelectStmt);
    if (stmts.length !== 1 || !sel) return null;
    const extra = Object.keys(sel).filter((k) => !['targetList', 'limitOption', 'op'].includes(k));
    const targets = list(sel.targetList);
    if (extra.length || targets.length !== 1) return null;
    return literalString(node(node(targets[0])?.ResTarget)?.val);
  } catch {
    return null;
  }
}

function unknown(why = 'a PL/pgSQL expression could not be read'): Found {
  return oneKind('unknown', why);
}

/**
 * A PL/pgSQL expression or embedded statement. parseMode is PostgreSQL's RawParseMode: 0 a whole statement
 * (SQL statements, PERFORM, RETURN QUERY, FOR … IN query, OPEN … FOR query, cursor queries); 2 an expression,
 * which PL/pgSQL runs as `SELECT <expr>`; 3–5 an assignment `target := expr`.
 */
function expression(e: Node, depth: number, sub: SubClassify): Found {
  const query = typeof e.query === 'string' ? e.query : null;
  if (query === null) return unknown();
  const mode = typeof e.parseMode === 'number' ? e.parseMode : 0;
  if (mode === 0) return sub(query, depth + 1);
  if (mode === 2) return sub(`SELECT ${query}`, depth + 1);
  if (mode >= 3 && mode <= 5) {
    const parts = splitAssignment(query);
    if (!parts) return unknown();
    const out = sub(`SELECT ${parts.target}`, depth + 1);
    merge(out, sub(`SELECT ${parts.value}`, depth + 1));
    return out;
  }
  return unknown();
}

/** `y[i+1] := expr` / `r.f = expr` → target and value, split at the first `:=` or `=` outside brackets. */
function splitAssignment(query: string): { target: string; value: string } | null {
  let tokens: { start: number; end: number; text: string }[];
  try {
    tokens = scanSync(query).tokens;
  } catch {
    return null;
  }
  const bytes = Buffer.from(query, 'utf8');
  let depth = 0;
  for (const t of tokens) {
    if (t.text === '[' || t.text === '(') depth++;
    else if (t.text === ']' || t.text === ')') depth--;
    else if (depth === 0 && (t.text === ':=' || t.text === '=')) {
      return { target: bytes.subarray(0, t.start).toString('utf8'), value: bytes.subarray(t.end).toString('utf8') };
    }
  }
  return null;
}
