// What a stored definition runs when it is used: a function's body (as pg_get_functiondef() prints it, for
// pg-catalog.ts), or the query of a view a session has just (re)defined and not yet committed (its CREATE VIEW
// text). Read as the classifier reads SQL that runs now: kinds, tables, calls, operators, casts.
import { parseSync } from './pg-parser.js';
import { runningEffect } from './classify-postgres.js';
import { found, list, node, type Found, type Node } from './pg-ast.js';

function only(sql: string, type: string): Node | undefined {
  try {
    const stmts = list(node(parseSync(sql))?.stmts);
    return stmts.length === 1 ? node(node(node(stmts[0])?.stmt)?.[type]) : undefined;
  } catch {
    return undefined;
  }
}

function unknown(): Found {
  const f = found();
  f.kinds.add('unknown');
  return f;
}

/**
 * What calling a function runs, from its `CREATE FUNCTION` text: its body (SQL, BEGIN ATOMIC or PL/pgSQL, read as
 * a CREATE FUNCTION's body is), its parameters' defaults and its SET clauses — not the CREATE itself. Else unknown.
 */
export function functionDefinitionEffect(def: string): Found {
  const s = only(def, 'CreateFunctionStmt');
  return s ? runningEffect(s, def, [s.sql_body, s.parameters, s.options], 'function') : unknown();
}

/** What reading a view runs, from its `CREATE [OR REPLACE] [MATERIALIZED] VIEW … AS query` text. Else unknown. */
export function viewDefinitionEffect(createSql: string): Found {
  const s = only(createSql, 'ViewStmt') ?? only(createSql, 'CreateTableAsStmt');
  return s ? runningEffect(s, createSql, [s.query]) : unknown();
}
