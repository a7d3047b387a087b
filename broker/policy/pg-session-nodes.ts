// Statements about the session rather than its data, for the PostgreSQL classifier: SET / RESET, DISCARD, CALL, and
// SQL-level prepared statements — whose effect on the session (ClassifiedStatement.prepared) the session core keeps,
// since EXECUTE runs what an earlier statement prepared (pg-prepared.ts).
import type { Kind, PreparedOp } from '../types.js';
import { because, node, type Found, type Node } from './pg-ast.js';
import { setValue, settingKinds } from './pg-functions.js';

/**
 * Add the kinds (and why, where the text does not say) of a session statement of type `type` to `out`; false if it
 * is not one. `nested`: it runs inside other SQL (a DO block's EXECUTE, a function body), out of the session's sight.
 */
export function sessionStatement(type: string, s: Node, nested: boolean, out: Found): boolean {
  switch (type) {
    case 'VariableSetStmt': {
      const kind = s.kind;
      const name = String(s.name ?? '');
      // SET TRANSACTION …; RESET ALL spares role.
      const kinds: Kind[] =
        kind === 'VAR_SET_MULTI' || kind === 'VAR_RESET_ALL' ? ['read'] : settingKinds(name, kind === 'VAR_SET_VALUE' ? { value: setValue(s.args) } : {});
      for (const k of kinds) out.kinds.add(k);
      if (kinds.includes('unknown'))
        because(out, 'unknown', `with ${name} set so, the server would read quotes or backslashes where the broker’s parser does not`);
      return true;
    }
    case 'DiscardStmt':
      // A session reset (what pools and GUI tools send between clients): DISCARD ALL is RESET SESSION AUTHORIZATION
      // and RESET ALL — back to the broker's own login role, never above it — and DEALLOCATE ALL, CLOSE ALL, …
      out.kinds.add('read');
      if (s.target === 'DISCARD_ALL' && nested) because(out, 'unknown', 'it DISCARDs ALL from inside other SQL, which the broker cannot follow');
      return true;
    case 'PrepareStmt':
      // Its query decides (walked by the caller). What a PREPARE run by other SQL prepares is out of the session's sight.
      if (nested) because(out, 'unknown', 'it PREPAREs a statement from inside other SQL, which the broker cannot follow');
      return true;
    case 'DeallocateStmt':
      out.kinds.add('read');
      if (nested) because(out, 'unknown', 'it DEALLOCATEs a prepared statement from inside other SQL, which the broker cannot follow');
      return true;
    case 'ExecuteStmt':
      // Runs a statement prepared earlier: the session substitutes what it saw prepared (pg-prepared.ts).
      because(out, 'unknown', `EXECUTE ${String(s.name ?? '')} runs a prepared statement, which the broker cannot see from its text alone`);
      return true;
    case 'CallStmt':
      because(out, 'unknown', 'CALL runs a procedure, which the broker does not follow');
      return true;
    default:
      return false;
  }
}

/**
 * What a top-level statement does to the session's prepared statements; `argKinds` gives the kinds of an EXECUTE's
 * parameter expressions.
 */
export function preparedOp(stmt: Node, argKinds: (execute: Node) => Kind[]): PreparedOp | undefined {
  const p = node(stmt.PrepareStmt);
  if (p && typeof p.name === 'string') return { op: 'prepare', name: p.name };
  const e = node(stmt.ExecuteStmt);
  if (e && typeof e.name === 'string') return { op: 'execute', name: e.name, args: argKinds(e) };
  const d = node(stmt.DeallocateStmt);
  if (d) return d.isall === true ? { op: 'forget', name: null } : typeof d.name === 'string' ? { op: 'forget', name: d.name } : undefined;
  if (node(stmt.DiscardStmt)?.target === 'DISCARD_ALL') return { op: 'forget', name: null };
  return undefined;
}
