// The store's two dialects as the contract tests see them: where a fresh store lives (a SQLite file in a temp
// folder; a PostgreSQL database of its own on the machine's server, its schemas emptied before each test),
// and a second, independent connection to look at it with, as another process would.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { UPSTREAM } from '../support/broker.js';

export interface Dialect {
  name: 'sqlite' | 'postgres';
  /** Once per file (beforeAll): creates the database. */
  setup(): Promise<void>;
  /** Once per file (afterAll): drops it. */
  teardown(): Promise<void>;
  /** Before each test, with every store of the last one closed: an empty store location, as a store URL. */
  fresh(): Promise<string>;
  /** One row of a query, on a connection of its own. */
  peek<T>(query: string): Promise<T>;
  /** Runs SQL on a connection of its own. */
  exec(sql: string): Promise<void>;
  /** Makes every insert of a statement whose sql is `sql` fail with "disk full"; returns the undo. */
  failInsertsOf(sql: string): Promise<() => Promise<void>>;
}

/** A test database's name for this process. */
export const own = (name: string): string => (name.endsWith(`_${process.pid}`) ? name : `${name}_${process.pid}`);

/**
 * `postgres://…/<database>` on the server the tests use. The name gets this test process's pid, so two runs
 * of the suite on one machine (a developer's and CI's) never empty or drop each other's database.
 */
export function pgUrl(database: string): string {
  database = own(database);
  const u = new URL(UPSTREAM);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Runs `fn` on a connection of its own to `url`. */
export async function withPg<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Creates a database of its own (dropped first if a crashed run left it); returns its URL. */
export async function createPgDatabase(name: string): Promise<string> {
  name = own(name);
  await withPg(UPSTREAM, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${name}`);
  });
  return pgUrl(name);
}

export async function dropPgDatabase(name: string): Promise<void> {
  name = own(name);
  await withPg(UPSTREAM, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

export function sqliteDialect(): Dialect {
  let dir = '';
  let file = '';
  const conn = () => new Database(file);
  return {
    name: 'sqlite',
    async setup() {},
    async teardown() {
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
    async fresh() {
      if (dir) rmSync(dir, { recursive: true, force: true });
      dir = mkdtempSync(join(tmpdir(), 'jit-store-'));
      file = join(dir, 'broker.db');
      return `sqlite:${file}`;
    },
    async peek<T>(query: string) {
      const db = new Database(file, { readonly: true });
      try {
        return db.prepare(query).get() as T; // test helper: the caller names the row shape
      } finally {
        db.close();
      }
    },
    async exec(sql: string) {
      const db = conn();
      try {
        db.exec(sql);
      } finally {
        db.close();
      }
    },
    async failInsertsOf(sql: string) {
      const lit = `'${sql.replaceAll("'", "''")}'`;
      await this.exec(`CREATE TRIGGER fail_insert BEFORE INSERT ON statements WHEN NEW.sql = ${lit} BEGIN SELECT RAISE(ABORT, 'disk full'); END`);
      return () => this.exec('DROP TRIGGER fail_insert');
    },
  };
}

/** `name`: the database's name, one per test file (files run one at a time, but never share one). */
export function postgresDialect(name: string): Dialect {
  const url = pgUrl(name);
  return {
    name: 'postgres',
    async setup() {
      await createPgDatabase(name);
    },
    async teardown() {
      await dropPgDatabase(name);
    },
    async fresh() {
      await withPg(url, (c) => c.query('DROP SCHEMA IF EXISTS drizzle CASCADE; DROP SCHEMA public CASCADE; CREATE SCHEMA public'));
      return url;
    },
    async peek<T>(query: string) {
      return withPg(url, async (c) => (await c.query(query)).rows[0] as T); // the caller names the row shape
    },
    async exec(sql: string) {
      await withPg(url, (c) => c.query(sql));
    },
    async failInsertsOf(sql: string) {
      const lit = `'${sql.replaceAll("'", "''")}'`;
      await this.exec(
        `CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$;
         CREATE TRIGGER fail_insert BEFORE INSERT ON statements FOR EACH ROW WHEN (NEW.sql = ${lit}) EXECUTE FUNCTION fail_insert()`,
      );
      return () => this.exec('DROP TRIGGER fail_insert ON statements; DROP FUNCTION fail_insert()');
    },
  };
}

/** Both dialects, for describe.each: `file` names this test file's PostgreSQL database (jit_store_<file>). */
export function dialects(file: string): Dialect[] {
  return [sqliteDialect(), postgresDialect(`jit_store_${file}`)];
}
