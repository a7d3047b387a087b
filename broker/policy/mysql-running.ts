// The session state as the classifier meets it statement by statement: what the session knew before the request
// (MysqlEnv, handed in as data), and what the request's statements change, in order — so that in
// `SET @q = 'SELECT 1'; PREPARE s FROM @q; EXECUTE s` each statement sees what the ones before it did. The
// changes (Changes) go back to the session, which applies them once the request has run (broker/session-mysql.ts).
import type { FunctionRef } from '../catalog/types.js';
import type { Kind } from '../types.js';
import type { MysqlServer, StateView, Value } from './mysql-env.js';

/** A statement PREPAREd by name, as classified when it was prepared: what an EXECUTE of it does. */
export interface PreparedStatement {
  /** Its text, for messages. */
  sql: string;
  kinds: Kind[];
  tables: string[];
  calls?: FunctionRef[];
  /** It sets sql_mode or the client character set, to a value known only once it runs. */
  settings: boolean;
}

/** What the session knows before a request. */
export interface MysqlEnv {
  /** The server (from its greeting); null: any server, every reading of versioned comments counts. */
  server: MysqlServer | null;
  /** sql_mode and character_set_client when known exactly; undefined: not known (but lexed as the classifier lexes). */
  sqlMode?: string | undefined;
  charset?: string | undefined;
  /** User variables whose value is known (lower-cased names); any other is not known. */
  vars: ReadonlyMap<string, Value>;
  /** Statements PREPAREd by name (lower-cased), through the broker, in this session. */
  prepared: ReadonlyMap<string, PreparedStatement>;
  /** Set when the session's text cannot be read at all (the server reported a mode or character set not followed). */
  unreadable?: string | undefined;
}

/** A setting a request makes: its new value, or undefined when only the server can tell (the engine asks it). */
export interface SettingChange {
  to: string | undefined;
}

/** What a request changes in the session once it has run. */
export interface Changes {
  /** User variables it sets: to a known value, or undefined. Applied after `allVars`. */
  vars: Map<string, Value | undefined>;
  /** Every user variable may change (a stored function or trigger, an assignment inside a query, EXECUTE, CALL). */
  allVars: boolean;
  sqlMode?: SettingChange;
  charset?: SettingChange;
  /** Prepared statements it defines (undefined: as something not known) or deallocates (null). */
  prepared: Map<string, PreparedStatement | null | undefined>;
}

export const noChanges = (): Changes => ({ vars: new Map(), allVars: false, prepared: new Map() });

export function hasChanges(c: Changes): boolean {
  return c.allVars || c.vars.size > 0 || c.prepared.size > 0 || c.sqlMode !== undefined || c.charset !== undefined;
}

export interface RunningOptions {
  /** The engine asks the server for a setting whose value the broker cannot compute (so such a SET may run). */
  ask: boolean;
  /** Text that runs later (a PREPAREd statement): nothing of the state now is known then. */
  blind?: boolean;
}

export class Running implements StateView {
  readonly changes: Changes = noChanges();
  /** Bumped when state is read or set: a statement that left it alone reads the same in any session. */
  touched = 0;
  /** A setting whose value only the server can tell was made by an earlier statement of this text. */
  doubt: string | null = null;

  constructor(
    readonly env: MysqlEnv | null,
    readonly opts: RunningOptions = { ask: false },
  ) {}

  variable(name: string): Value | undefined {
    this.touched++;
    const c = this.changes;
    if (c.vars.has(name)) return c.vars.get(name);
    if (c.allVars || this.opts.blind) return undefined;
    return this.env?.vars.get(name);
  }

  setting(name: 'sql_mode' | 'character_set_client'): string | undefined {
    this.touched++;
    const ch = name === 'sql_mode' ? this.changes.sqlMode : this.changes.charset;
    if (ch) return ch.to;
    if (this.opts.blind) return undefined;
    return name === 'sql_mode' ? this.env?.sqlMode : this.env?.charset;
  }

  statement(name: string): PreparedStatement | undefined {
    this.touched++;
    const p = this.changes.prepared;
    if (p.has(name)) return p.get(name) ?? undefined;
    return this.opts.blind ? undefined : this.env?.prepared.get(name);
  }

  setVariable(name: string, v: Value | undefined): void {
    this.touched++;
    this.changes.vars.set(name, v);
  }

  /** Any user variable may have changed. */
  anyVariable(): void {
    this.changes.allVars = true;
    this.changes.vars.clear();
  }

  set(name: 'sql_mode' | 'character_set_client', to: string | undefined): void {
    this.touched++;
    if (name === 'sql_mode') this.changes.sqlMode = { to };
    else this.changes.charset = { to };
  }

  prepare(name: string, p: PreparedStatement | null | undefined): void {
    this.touched++;
    this.changes.prepared.set(name, p);
  }
}

const same = <T>(a: T, b: T): boolean => JSON.stringify(a) === JSON.stringify(b);

/** What two readings of the same text change, as one: whatever they disagree on is not known. */
export function mergeChanges(a: Changes, b: Changes): Changes {
  const out = noChanges();
  out.allVars = a.allVars || b.allVars;
  for (const [k, v] of a.vars) {
    if (b.vars.has(k) || !out.allVars) out.vars.set(k, b.vars.has(k) && same(b.vars.get(k), v) ? v : undefined);
  }
  for (const k of b.vars.keys()) if (!a.vars.has(k) && !out.allVars) out.vars.set(k, undefined);
  for (const [k, v] of a.prepared) out.prepared.set(k, b.prepared.has(k) && same(b.prepared.get(k), v) ? v : undefined);
  for (const k of b.prepared.keys()) if (!a.prepared.has(k)) out.prepared.set(k, undefined);
  for (const s of ['sqlMode', 'charset'] as const) {
    const x = a[s];
    const y = b[s];
    if (x || y) out[s] = { to: x && y && x.to === y.to ? x.to : undefined };
  }
  return out;
}
