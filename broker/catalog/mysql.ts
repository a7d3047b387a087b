// Read a MySQL/MariaDB target's catalog into a CatalogSnapshot, over the broker's own upstream account (mysql2):
// one short connection per load (the target URL's TLS mode), closed after it, every step under one time limit.
//   - routines: information_schema.ROUTINES, functions and procedures of every schema the account can see, with
//     SQL_DATA_ACCESS, IS_DETERMINISTIC, SECURITY_TYPE, and the body as the server runs it: MariaDB's mysql.proc
//     `body` if the account may read it. ROUTINE_DEFINITION is not that text (MariaDB shows body_utf8, its string
//     escapes already processed: `'\\'` there reads `'\'`, a quote that swallows what follows), so it is used only
//     when it holds no backslash. A body the classifier would not lex as the server does — written under an
//     sql_mode such as ANSI_QUOTES, NO_BACKSLASH_ESCAPES or ORACLE, or by a client in a character set where a
//     backslash byte can end a multi-byte character — is left out: the function is then unknown, as unreadable.
//     Argument counts from information_schema.PARAMETERS.
//   - loadable functions (UDFs, CREATE FUNCTION … SONAME): mysql.func if readable (a UDF is global: schema '').
//     If it is not readable, an unknown name is still unknown; a UDF named like a built-in would pass unseen.
//   - views: information_schema.VIEWS, with their definition as the server stores it (names fully qualified);
//     an empty definition (no SHOW VIEW privilege) is null, so reading the view is unknown. `tables` is filled
//     from the definitions (broker/policy/mysql-catalog.ts reads them the same way).
import type mysql from 'mysql2/promise';
import { parseMysqlUrl, type MysqlTargetUrl } from '../engines/mysql/upstream.js';
import { viewBaseTables } from '../policy/mysql-catalog.js';
import { isSafeSqlMode } from '../policy/mysql-set.js';
import type { Target } from '../types.js';
import type { CatalogFunction, CatalogSnapshot, CatalogView } from './types.js';

/** The whole load (connect, every query) must finish within this. */
const TIMEOUT_MS = 15_000;

const ROUTINES = `
SELECT ROUTINE_SCHEMA AS s, ROUTINE_NAME AS n, ROUTINE_TYPE AS t, ROUTINE_BODY AS lang, ROUTINE_DEFINITION AS body,
       IS_DETERMINISTIC AS det, SQL_DATA_ACCESS AS access, SECURITY_TYPE AS sec, SQL_MODE AS mode, CHARACTER_SET_CLIENT AS cs
FROM information_schema.ROUTINES WHERE ROUTINE_TYPE IN ('FUNCTION', 'PROCEDURE')`;

const PARAMETERS = `
SELECT SPECIFIC_SCHEMA AS s, SPECIFIC_NAME AS n, ROUTINE_TYPE AS t, COUNT(*) AS args
FROM information_schema.PARAMETERS WHERE ORDINAL_POSITION > 0 GROUP BY SPECIFIC_SCHEMA, SPECIFIC_NAME, ROUTINE_TYPE`;

/** MariaDB (and MySQL before 8.0): the body as written, in the creating client's character set. */
const PROC_BODIES = `SELECT db AS s, name AS n, type AS t, body FROM mysql.proc`;

/** Client character sets in which no byte of a multi-byte character is a quote or backslash (mysql-set.ts says why). */
const SAFE_CHARSETS = new Set(['utf8', 'utf8mb3', 'utf8mb4', 'latin1', 'ascii', 'binary']);
const UDFS = `SELECT name AS n, type AS t FROM mysql.func`;
const VIEWS = `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS n, VIEW_DEFINITION AS def FROM information_schema.VIEWS`;

type Row = Record<string, unknown>;

const str = (v: unknown): string | null => (v === null || v === undefined ? null : Buffer.isBuffer(v) ? v.toString('utf8') : String(v));
const key = (schema: string, name: string, type: string): string => `${schema}\0${name.toLowerCase()}\0${type}`;

function options(u: MysqlTargetUrl, tls: boolean, timeoutMs: number): mysql.ConnectionOptions {
  return {
    host: u.host,
    port: u.port,
    user: u.user,
    password: u.password,
    database: u.database,
    connectTimeout: timeoutMs,
    ssl: tls ? { rejectUnauthorized: u.ssl === 'verify' } : undefined,
    charset: 'utf8mb4_general_ci',
  };
}

/** A mysql2 connection with the target URL's account and TLS mode (also `jit doctor`'s). */
export async function connectMysql(u: MysqlTargetUrl, timeoutMs = TIMEOUT_MS): Promise<mysql.Connection> {
  const { default: mysql } = await import('mysql2/promise'); // loaded by the first MySQL catalog read, not by every broker
  if (u.ssl === false) return mysql.createConnection(options(u, false, timeoutMs));
  try {
    return await mysql.createConnection(options(u, true, timeoutMs));
  } catch (e) {
    // `prefer` (the default): a server without TLS is read in plaintext, as the broker's own upstream leg does.
    if (u.ssl === 'prefer' && (e as { code?: string }).code === 'HANDSHAKE_NO_SSL_SUPPORT') return mysql.createConnection(options(u, false, timeoutMs));
    throw e;
  }
}

/** Rows of `sql`, or null when the account may not read it (mysql.proc, mysql.func are optional). */
async function rows(c: mysql.Connection, sql: string, optional = false): Promise<Row[] | null> {
  try {
    const [r] = await c.query({ sql, timeout: TIMEOUT_MS });
    return r as Row[];
  } catch (e) {
    if (optional && typeof (e as { errno?: unknown }).errno === 'number') return null;
    throw e;
  }
}

function group<T extends { name: string }>(xs: readonly T[]): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) {
    const k = x.name.toLowerCase();
    m.set(k, [...(m.get(k) ?? []), x]);
  }
  return m;
}

async function read(c: mysql.Connection): Promise<CatalogSnapshot> {
  const loadedAt = Date.now();
  const routines = (await rows(c, ROUTINES))!;
  const params = new Map(((await rows(c, PARAMETERS)) ?? []).map((r) => [key(str(r.s)!, str(r.n)!, str(r.t)!), Number(r.args)]));
  const proc = await rows(c, PROC_BODIES, true);
  const raw = new Map((proc ?? []).map((r) => [key(str(r.s)!, str(r.n)!, str(r.t)!), r.body]));
  const functions: CatalogFunction[] = routines.map((r) => {
    const schema = str(r.s)!;
    const name = str(r.n)!.toLowerCase();
    const type = str(r.t)!;
    const k = key(schema, name, type);
    const cs = (str(r.cs) ?? '').toLowerCase();
    const written = raw.get(k);
    const shown = str(r.body);
    let body = Buffer.isBuffer(written) ? written.toString(cs === 'latin1' ? 'latin1' : 'utf8') : typeof written === 'string' ? written : null;
    if (body === null && shown !== null && !shown.includes('\\')) body = shown;
    if (!SAFE_CHARSETS.has(cs)) body = null;
    const n = params.get(k) ?? 0;
    return {
      oid: 0,
      schema,
      name,
      args: [n, n],
      prokind: type === 'PROCEDURE' ? 'p' : 'f',
      volatility: str(r.det) === 'YES' ? 'i' : 'v',
      securityDefiner: str(r.sec) === 'DEFINER',
      language: str(r.lang) ?? 'SQL',
      dataAccess: str(r.access),
      body: body !== null && isSafeSqlMode(str(r.mode) ?? '') ? body : null,
    };
  });
  for (const r of (await rows(c, UDFS, true)) ?? []) {
    functions.push({
      oid: 0,
      schema: '',
      name: str(r.n)!.toLowerCase(),
      args: [0, Infinity],
      prokind: str(r.t) === 'aggregate' ? 'a' : 'f',
      volatility: 'v',
      securityDefiner: false,
      language: 'UDF',
      dataAccess: null,
      body: null,
    });
  }
  const views: CatalogView[] = (await rows(c, VIEWS))!.map((r) => {
    const def = str(r.def);
    return { schema: str(r.s)!, name: str(r.n)!, tables: [], functionOids: [], definition: def ? def : null };
  });
  const snap: CatalogSnapshot = {
    dialect: 'mysql',
    loadedAt,
    functions: group(functions),
    functionsByOid: new Map(),
    operators: new Map(),
    views: group(views),
  };
  for (const v of views) v.tables = viewBaseTables(snap, v) ?? [];
  return snap;
}

/** The functions and views of a MySQL/MariaDB target, read over the broker's own account. */
export async function loadMysqlCatalog(target: Target): Promise<CatalogSnapshot> {
  const u = parseMysqlUrl(target.upstream);
  let timer: NodeJS.Timeout | undefined;
  let conn: mysql.Connection | null = null;
  let timedOut = false;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      conn?.destroy();
      reject(new Error(`reading the catalog of '${target.name}' took longer than ${TIMEOUT_MS / 1000}s`));
    }, TIMEOUT_MS);
  });
  const work = (async () => {
    const c = await connectMysql(u);
    if (timedOut) {
      c.destroy();
      throw new Error('timed out');
    }
    conn = c;
    try {
      return await read(c);
    } finally {
      conn = null;
      await c.end().catch(() => c.destroy());
    }
  })();
  work.catch(() => {}); // after a timeout its rejection is nobody's
  try {
    return await Promise.race([work, limit]);
  } finally {
    clearTimeout(timer);
  }
}
