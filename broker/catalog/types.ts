// What the broker knows of a target's own catalog, as plain data: the functions a statement may call and the
// views it may read, so policy can judge a name by what the database says it is (policy stays pure: it is
// handed a snapshot; broker/catalog/ loads one per target, over the broker's own upstream account).

/** A function call as written in a statement, before resolution. */
export interface FunctionRef {
  /** Schema as written (lower-cased unless quoted), or null when unqualified (resolved across every schema). */
  schema: string | null;
  name: string;
  /** Number of arguments written, or null when the parser cannot tell (MySQL). */
  args: number | null;
  /**
   * Only possibly a call: PostgreSQL's attribute notation (`t.f` is `f(t)` when t has no column f). Resolved like
   * any call, but a name the catalog does not know is a column, not an unresolved call.
   */
  maybe?: boolean;
}

/** One function of the catalog (an overload: PostgreSQL has several per name). */
export interface CatalogFunction {
  /** PostgreSQL: pg_proc.oid; MySQL: 0. */
  oid: number;
  schema: string;
  name: string;
  /** Argument counts the function accepts: [required, total]; total is Infinity for a variadic function. */
  args: [number, number];
  /** `f` function, `p` procedure, `a` aggregate, `w` window. */
  prokind: 'f' | 'p' | 'a' | 'w';
  /** PostgreSQL provolatile (`i`mmutable, `s`table, `v`olatile); MySQL: `v` unless DETERMINISTIC. */
  volatility: 'i' | 's' | 'v';
  securityDefiner: boolean;
  /** Language name (`sql`, `plpgsql`, `c`, `internal`…; MySQL `SQL`). */
  language: string;
  /** MySQL's SQL_DATA_ACCESS (`NO SQL`, `CONTAINS SQL`, `READS SQL DATA`, `MODIFIES SQL DATA`); null elsewhere. */
  dataAccess: string | null;
  /**
   * The body, for languages whose body the classifier reads (sql, plpgsql; MySQL routines); else null.
   * PostgreSQL: the whole `CREATE FUNCTION` statement as pg_get_functiondef() prints it (PL/pgSQL compiles
   * from that, with its parameters; a `BEGIN ATOMIC` body has no prosrc).
   */
  body: string | null;
  /** OIDs of other functions calling it runs besides its body: an aggregate's support functions (PostgreSQL). */
  runs?: number[];
}

/** One view (or materialized view) and what reading it reads and calls, recursively through views of views. */
export interface CatalogView {
  schema: string;
  name: string;
  /** Base relations it reads, `schema.name`, lower-cased (views already followed). */
  tables: string[];
  /** Functions its query calls, already resolved by the server (PostgreSQL: pg_depend) — OIDs in `functions`. */
  functionOids: number[];
  /**
   * The view's definition, for the classifier to read. MySQL: as stored. PostgreSQL: as pg_get_viewdef() prints it
   * under search_path = pg_catalog (every name outside pg_catalog schema-qualified), for the built-in functions and
   * relations pg_depend does not record; for a table with row-level security, `SELECT (policy expr), …`.
   */
  definition: string | null;
}

/**
 * A partitioned table or inheritance parent (PostgreSQL pg_inherits): reading or writing it without ONLY reaches
 * the rows of every table below it.
 */
export interface CatalogParent {
  schema: string;
  name: string;
  /** Its partitions and inheritance children, theirs too (every level), `schema.name`, lower-cased. */
  descendants: string[];
}

export interface CatalogSnapshot {
  dialect: 'postgres' | 'mysql';
  /** When it was read (ms since the epoch). */
  loadedAt: number;
  /** Functions by lower-cased name (every schema, every overload). */
  functions: ReadonlyMap<string, readonly CatalogFunction[]>;
  /** The same, by OID (PostgreSQL). */
  functionsByOid: ReadonlyMap<number, CatalogFunction>;
  /** User-defined operators by name → the functions that implement them (PostgreSQL; not pg_catalog's). */
  operators: ReadonlyMap<string, readonly CatalogFunction[]>;
  /** Views by lower-cased name (every schema). */
  views: ReadonlyMap<string, readonly CatalogView[]>;
  /**
   * PostgreSQL: by lower-cased type name, the functions a cast to that type may run — user-defined casts' functions
   * (whatever the source type) and the functions a domain's CHECK constraints call (its base domains' too).
   */
  casts?: ReadonlyMap<string, readonly CatalogFunction[]>;
  /** PostgreSQL: partitioned tables and inheritance parents by lower-cased name (every schema). */
  parents?: ReadonlyMap<string, readonly CatalogParent[]>;
}
