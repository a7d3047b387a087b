// What keeps a MySQL connection inside its target: the default database may only be the target's own
// (COM_INIT_DB, and `USE` statements inside query text: the upstream database's name, or the target's name, which
// the engine maps to it when it is a statement of its own), and KILL ids are the broker's connection ids.
import type { ClassifiedStatement } from '../../types.js';

/** Skip whitespace and comments (`/* … *\/`, `# …`, `-- …`) from `i`. */
function skip(s: string, i: number): number {
  for (;;) {
    while (i < s.length && /\s/.test(s[i]!)) i++;
    if (s.startsWith('/*', i)) {
      const e = s.indexOf('*/', i + 2);
      if (e < 0) return s.length;
      i = e + 2;
    } else if (s[i] === '#' || (s.startsWith('--', i) && (i + 2 >= s.length || /\s/.test(s[i + 2]!)))) {
      const e = s.indexOf('\n', i);
      if (e < 0) return s.length;
      i = e + 1;
    } else {
      return i;
    }
  }
}

/**
 * The database a `USE` statement names: undefined when the statement is not a USE, null when the name
 * cannot be read. `text` is one statement as the classifier split it (versioned comments opened up).
 */
export function useDatabase(text: string): string | null | undefined {
  let i = skip(text, 0);
  const verb = /^use(?![A-Za-z0-9_$\u0080-\uffff])/i.exec(text.slice(i, i + 4));
  if (!verb) return undefined;
  i = skip(text, i + 3);
  let name: string;
  if (text[i] === '`') {
    let j = i + 1;
    name = '';
    for (;;) {
      const e = text.indexOf('`', j);
      if (e < 0) return null;
      name += text.slice(j, e);
      if (text[e + 1] === '`') {
        name += '`';
        j = e + 2;
      } else {
        i = e + 1;
        break;
      }
    }
  } else {
    const m = /^[A-Za-z0-9_$\u0080-\uffff]+/.exec(text.slice(i));
    if (!m) return null;
    name = m[0];
    i += name.length;
  }
  i = skip(text, i);
  if (text[i] === ';') i = skip(text, i + 1);
  return i >= text.length ? name : null;
}

export const quoteIdent = (s: string): string => `\`${s.replace(/`/g, '``')}\``;
export const quoteString = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

export type Confine = (statements: readonly ClassifiedStatement[]) => string | null;

/**
 * The containment check handed to the session with every query and prepare (see StatementRequest.confine). With
 * `mapped`, the text is `USE <target>` on its own, which the engine sends as COM_INIT_DB of the upstream database.
 */
export function confineTo(target: string, database: string, mapped = false): Confine {
  return (statements) => {
    if (mapped && (statements.length !== 1 || useDatabase(statements[0]!.sql) !== target)) {
      return `USE ${quoteIdent(target)} is taken as the upstream database ${quoteIdent(database)} only as a statement of its own`;
    }
    for (const st of statements) {
      const db = useDatabase(st.sql);
      if (db === undefined || db === database || (mapped && db === target)) continue;
      if (db === null) return `this USE statement's database cannot be read, and a connection to target '${target}' stays in database ${quoteIdent(database)}`;
      if (db === target)
        return `USE ${quoteIdent(target)} is taken as the upstream database ${quoteIdent(database)} only as a statement of its own (send it alone, or write USE ${quoteIdent(database)})`;
      return `USE ${quoteIdent(db)} would leave target '${target}': its connections stay in database ${quoteIdent(database)}`;
    }
    return null;
  };
}

export interface KillRequest {
  scope: 'QUERY' | 'CONNECTION';
  id: number;
}

/** `KILL [HARD|SOFT] [QUERY|CONNECTION] <id>` as the whole text; anything fancier is left to policy (as admin). */
export function parseKill(sql: string): KillRequest | null {
  const m = /^\s*KILL\s+(?:(?:HARD|SOFT)\s+)?(?:(QUERY|CONNECTION)\s+)?(\d{1,10})\s*;?\s*$/i.exec(sql);
  if (!m) return null;
  const id = Number(m[2]);
  if (id > 0xffffffff) return null;
  return { scope: (m[1]?.toUpperCase() as 'QUERY' | 'CONNECTION' | undefined) ?? 'CONNECTION', id };
}
