// Where result columns come from, resolved the way the server knows it: a RowDescription gives each column's
// table OID and attribute number; the catalog turns them into schema.table.column — plus, for a view, the
// columns it is a plain reference to (from its _RETURN rule), and for a partition or inheritance child, the
// same column of its parents. Type OIDs of user types are classified too (enum, composite, string, array).
//
// One small connection per target, separate from every session's (a session's own connection may be inside
// a transaction or mid-pipeline), queried with the simple protocol; results cached per target, bounded
// (LRU) and looked up again after 10 minutes. DDL that goes through the broker empties the cache once it
// is committed (see masking.ts); DDL run elsewhere (ALTER TABLE … RENAME COLUMN, CREATE OR REPLACE VIEW)
// is seen within those 10 minutes. A table dropped and re-created gets a new OID, so it is looked up
// afresh. A table the catalog connection cannot see (created in a session's uncommitted transaction) is
// not cached: it is looked up again the next time, and meanwhile its columns count as computed ones.
import { Parser } from 'pg-protocol/dist/parser.js';
import { serialize } from 'pg-protocol';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import type { ColumnOrigin } from '../../masking/index.js';
import { viewColumnOrigins } from './node-tree.js';
import { builtinKind, carriesText, type ValueKind } from './pg-values.js';
import type { RowDescription } from './row-description.js';
import { connectUpstream, type Upstream } from './upstream.js';

export interface TableInfo {
  schema: string;
  name: string;
  /** attnum → name, dropped columns left out. */
  columns: Map<number, string>;
  byName: Map<string, number>;
  /** Partition / inheritance parents. */
  parents: number[];
  /** A view's (or materialized view's) columns: attnum → [table OID, attnum] it is a plain reference to. */
  view: Map<number, [number, number]> | null;
}

/** Bounded, least recently used out first; entries older than maxAge are looked up again (fresh()). */
class Lru<K, V> {
  private readonly map = new Map<K, { v: V; at: number }>();
  constructor(
    private readonly max: number,
    private readonly maxAgeMs: number,
  ) {}
  get(k: K): V | undefined {
    const e = this.map.get(k);
    if (e !== undefined) {
      this.map.delete(k);
      this.map.set(k, e);
    }
    return e?.v;
  }
  /** Known and not older than maxAge. */
  fresh(k: K): boolean {
    const e = this.map.get(k);
    return e !== undefined && Date.now() - e.at < this.maxAgeMs;
  }
  set(k: K, v: V): void {
    this.map.delete(k);
    this.map.set(k, { v, at: Date.now() });
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }
  clear(): void {
    this.map.clear();
  }
}

type Rows = (string | null)[][];

/** A serial, simple-protocol client on one upstream connection, reconnected when it is lost (also the privilege check's). */
export class CatalogConnection {
  private up: Promise<Upstream> | null = null;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    /** A function: read at each (re)connect, so a rotated upstream password is used (engines/upstream-secret.ts). */
    private readonly url: string | (() => string),
    private readonly timeoutMs: number,
    private readonly applicationName = 'jit-broker catalog',
  ) {}

  /** Run `fn` alone on the connection (callers queue up). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => {});
    return run;
  }

  /** The result sets of a query string (text values), in order; rejects on an error or a timeout. */
  async query(sql: string): Promise<Rows[]> {
    this.up ??= connectUpstream(typeof this.url === 'string' ? this.url : this.url(), { application_name: this.applicationName }, this.timeoutMs).then((u) => {
      u.socket.on('close', () => (this.up = null));
      u.socket.on('error', () => (this.up = null));
      return u;
    });
    const pending = this.up;
    const u = await pending.catch((e: unknown) => {
      if (this.up === pending) this.up = null;
      throw e;
    });
    return new Promise<Rows[]>((resolve, reject) => {
      const sets: Rows[] = [];
      let error: string | null = null;
      const parser = new Parser();
      const done = (e: Error | null) => {
        clearTimeout(timer);
        u.socket.removeListener('data', onData);
        u.socket.pause();
        if (e) reject(e);
        else resolve(sets);
      };
      const timer = setTimeout(() => {
        u.socket.destroy();
        this.up = null;
        done(new Error(`no answer from the catalog within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      const onData = (d: Buffer) =>
        parser.parse(d, (m: BackendMessage) => {
          if (m.name === 'rowDescription') sets.push([]);
          else if (m.name === 'dataRow') sets[sets.length - 1]?.push((m as unknown as { fields: (string | null)[] }).fields);
          else if (m.name === 'error') error = (m as unknown as Error).message;
          else if (m.name === 'readyForQuery') done(error ? new Error(error) : null);
        });
      u.socket.on('data', onData);
      u.socket.resume();
      u.socket.write(serialize.query(sql));
    });
  }

  close(): void {
    void this.up?.then((u) => u.socket.destroy()).catch(() => {});
    this.up = null;
  }
}

export class PgCatalog {
  private readonly tables: Lru<number, TableInfo>;
  private readonly types: Lru<number, ValueKind>;
  private readonly conn: CatalogConnection;
  /** How long an answer is trusted; descriptions resolved earlier are looked up again. */
  readonly maxAgeMs: number;
  /** Bumped by invalidate(): descriptions resolved in an earlier epoch are stale. */
  epoch = 0;

  constructor(url: string | (() => string), opts: { maxEntries?: number; timeoutMs?: number; maxAgeMs?: number } = {}) {
    this.maxAgeMs = opts.maxAgeMs ?? 10 * 60_000;
    this.tables = new Lru(opts.maxEntries ?? 4096, this.maxAgeMs);
    this.types = new Lru(opts.maxEntries ?? 4096, this.maxAgeMs);
    this.conn = new CatalogConnection(url, opts.timeoutMs ?? 10_000);
  }

  /** Forget everything (DDL went through the broker): the next descriptions are looked up afresh. */
  invalidate(): void {
    this.tables.clear();
    this.types.clear();
    this.epoch++;
  }

  /** A type's kind: built in, resolved, or `unknown` (a user type not resolved). */
  readonly kind = (oid: number): ValueKind => builtinKind(oid) ?? this.types.get(oid) ?? 'unknown';

  table(oid: number): TableInfo | undefined {
    return this.tables.get(oid);
  }

  /** Whether every table (with what it derives from) and user type of this description is known. */
  covers(desc: RowDescription): boolean {
    return this.missing(
      desc.map((c) => c.tableOid),
      desc.map((c) => c.typeOid),
    ).every((s) => s.size === 0);
  }

  private missing(tableOids: Iterable<number>, typeOids: Iterable<number>): [Set<number>, Set<number>] {
    const tables = new Set<number>();
    const seen = new Set<number>();
    const visit = (oid: number, depth: number) => {
      if (oid === 0 || seen.has(oid) || depth > 8) return;
      seen.add(oid);
      const t = this.tables.get(oid);
      if (!t || !this.tables.fresh(oid)) tables.add(oid);
      if (!t) return;
      for (const p of t.parents) visit(p, depth + 1);
      for (const [tbl] of t.view?.values() ?? []) visit(tbl, depth + 1);
    };
    for (const oid of tableOids) visit(oid, 0);
    const types = new Set<number>();
    for (const oid of typeOids) if (builtinKind(oid) === undefined && !this.types.fresh(oid)) types.add(oid);
    return [tables, types];
  }

  /** Look up what `desc` needs and the cache lacks; rejects when the catalog cannot be asked. */
  resolve(desc: RowDescription): Promise<void> {
    return this.conn.exclusive(async () => {
      let [tables, types] = this.missing(
        desc.map((c) => c.tableOid),
        desc.map((c) => c.typeOid),
      );
      const tried = new Set<number>();
      const deferred = new Map<number, { dep: number; array: boolean }>(); // arrays of / domains over other types
      for (let round = 0; round < 8 && (tables.size || types.size); round++) {
        for (const t of tables) tried.add(t);
        const next = await this.fetch([...tables], [...types], deferred);
        [tables, types] = this.missing(next.tables, next.types);
        for (const t of tried) tables.delete(t);
      }
      // Now that what they depend on is known (chains of a few steps): an array of text-carrying elements is
      // an array, else opaque; a domain is what its base type is. Unresolved: left as first set.
      for (let pass = 0; pass < 4; pass++) {
        for (const [oid, { dep, array }] of deferred) {
          const k = builtinKind(dep) ?? this.types.get(dep);
          if (k) this.types.set(oid, array ? (carriesText(k) ? 'array' : 'opaque') : k);
        }
      }
    });
  }

  private async fetch(
    tables: number[],
    types: number[],
    deferred: Map<number, { dep: number; array: boolean }>,
  ): Promise<{ tables: number[]; types: number[] }> {
    const parts: string[] = [];
    const t = tables.join(',');
    if (tables.length) {
      parts.push(
        `SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid IN (${t})`,
        `SELECT attrelid, attnum, attname FROM pg_attribute WHERE attrelid IN (${t}) AND attnum > 0 AND NOT attisdropped`,
        `SELECT inhrelid, inhparent FROM pg_inherits WHERE inhrelid IN (${t})`,
        `SELECT ev_class, ev_action FROM pg_rewrite WHERE ev_class IN (${t}) AND rulename = '_RETURN'`,
      );
    }
    if (types.length) {
      const y = types.join(',');
      parts.push(
        `SELECT oid, typtype, typcategory, typelem, typbasetype FROM pg_type WHERE oid IN (${y})`,
        `SELECT DISTINCT a.atttypid FROM pg_type t JOIN pg_attribute a ON a.attrelid = t.typrelid WHERE t.oid IN (${y}) AND a.attnum > 0 AND NOT a.attisdropped`,
      );
    }
    const sets = await this.conn.query(`${parts.join(';\n')};`);
    const next = { tables: [] as number[], types: [] as number[] };
    if (tables.length) {
      const [rels = [], atts = [], inh = [], rules = []] = sets;
      const byOid = new Map<number, TableInfo>();
      for (const [oid, schema, name] of rels)
        byOid.set(Number(oid), { schema: schema!, name: name!, columns: new Map(), byName: new Map(), parents: [], view: null });
      for (const [rel, num, name] of atts) {
        const info = byOid.get(Number(rel));
        info?.columns.set(Number(num), name!);
        info?.byName.set(name!, Number(num));
      }
      for (const [rel, parent] of inh) byOid.get(Number(rel))?.parents.push(Number(parent));
      for (const [rel, action] of rules) {
        const info = byOid.get(Number(rel));
        if (info && action) info.view = viewColumnOrigins(action);
      }
      for (const [oid, info] of byOid) {
        this.tables.set(oid, info);
        next.tables.push(...info.parents, ...[...(info.view?.values() ?? [])].map(([tbl]) => tbl));
      }
    }
    if (types.length) {
      const [rows = [], fields = []] = sets.slice(tables.length ? 4 : 0);
      for (const [oid, typtype, category, elem, base] of rows) {
        const o = Number(oid);
        let kind: ValueKind = 'unknown';
        if (typtype === 'e' || category === 'S') kind = 'text';
        else if (typtype === 'c') kind = 'record';
        else if (typtype === 'r' || typtype === 'm' || typtype === 'p') kind = 'opaque';
        else if (typtype === 'd' || (category === 'A' && Number(elem))) {
          const array = typtype !== 'd';
          kind = array ? 'array' : 'unknown';
          const dep = Number(array ? elem : base);
          deferred.set(o, { dep, array });
          next.types.push(dep);
        } else if (category !== 'U') kind = 'opaque';
        this.types.set(o, kind);
      }
      for (const [typ] of fields) next.types.push(Number(typ));
    }
    return next;
  }

  /** Every origin of a column: itself, then what it is a view of and the same column of its parents. */
  origins(tableOid: number, attnum: number): ColumnOrigin[] | null {
    const out: ColumnOrigin[] = [];
    const visit = (oid: number, num: number, depth: number) => {
      const t = this.tables.get(oid);
      const name = t?.columns.get(num);
      if (!t || name === undefined || depth > 8) return;
      out.push({ schema: t.schema, table: t.name, column: name });
      for (const p of t.parents) {
        const n = this.tables.get(p)?.byName.get(name);
        if (n !== undefined) visit(p, n, depth + 1);
      }
      const v = t.view?.get(num);
      if (v?.[0]) visit(v[0], v[1], depth + 1);
    };
    visit(tableOid, attnum, 0);
    return out.length ? out : null;
  }

  close(): void {
    this.conn.close();
  }
}
