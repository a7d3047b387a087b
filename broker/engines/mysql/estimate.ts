// The blast radius of a statement held for approval, on MySQL/MariaDB: on the session's own upstream connection while
// the statement waits unforwarded (its current database, temporary tables and open transaction are what is planned
// against), `EXPLAIN FORMAT=JSON` — planned, never executed — for DELETE and UPDATE, and
// information_schema.TABLES (TABLE_ROWS, DATA_LENGTH + INDEX_LENGTH) for TRUNCATE and DROP TABLE.
//
// The EXPLAIN goes through a SQL PREPARE of the text as a hex literal (no quoting to get wrong), so the server takes
// exactly one statement: a text it would read as two fails to prepare, and nothing runs. MariaDB bounds each step
// with SET STATEMENT lock_wait_timeout (a table someone locked does not keep the session waiting). MySQL does not
// abort a transaction on an error, so the estimate needs no savepoint; within a transaction, the metadata locks the
// EXPLAIN takes are held to its end, as the statement's own will be. MySQL (not MariaDB) takes no hex literal in
// PREPARE: no estimate there for DELETE/UPDATE.
import type { BlastRadius } from '../../store/types.js';
import { blastRadius, estimates, type Touch } from '../blast-radius.js';
import type { EstimateRequest, Estimator } from '../engine.js';

/** What the estimator needs of the relay: the broker's own queries (the first row of each; null after an error or none). */
export interface MysqlProbeHost {
  run(queries: readonly string[]): Promise<((string | null)[] | null)[]> | null;
}

const NAME = 'jitbroker_estimate';
const hex = (s: string) => `0x${Buffer.from(s, 'utf8').toString('hex') || '00'}`;
const text = (s: string) => `CONVERT(${hex(s)} USING utf8mb4)`;

export function mysqlEstimator(relay: MysqlProbeHost, mariadb: boolean): Estimator {
  return (req) => estimate(relay, req, mariadb).catch(() => null);
}

async function estimate(relay: MysqlProbeHost, req: EstimateRequest, mariadb: boolean): Promise<BlastRadius | null> {
  const wanted = estimates(req.statements);
  if (!wanted.length) return null;
  const bounded = (q: string) => (mariadb ? `SET STATEMENT lock_wait_timeout = 1, max_statement_time = 1.5 FOR ${q}` : q);
  const queries: string[] = [];
  for (const e of wanted) {
    if (e.how === 'explain') {
      if (!mariadb) return null;
      queries.push(bounded(`PREPARE ${NAME} FROM ${hex(`EXPLAIN FORMAT=JSON ${e.sql}`)}`), bounded(`EXECUTE ${NAME}`), `DEALLOCATE PREPARE ${NAME}`);
    } else {
      for (const table of e.tables) {
        const dot = table.indexOf('.');
        const schema = dot > 0 ? text(table.slice(0, dot).replace(/`/g, '')) : 'DATABASE()';
        const name = text((dot > 0 ? table.slice(dot + 1) : table).replace(/`/g, ''));
        queries.push(
          `SELECT TABLE_NAME, TABLE_ROWS, DATA_LENGTH + INDEX_LENGTH FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${schema} AND LOWER(TABLE_NAME) = LOWER(${name}) AND TABLE_TYPE = 'BASE TABLE'`,
        );
      }
    }
  }
  const rows = await relay.run(queries);
  if (!rows) return null;
  const touches: Touch[] = [];
  let i = 0;
  for (const e of wanted) {
    if (e.how === 'explain') {
      const t = planned(rows[i + 1]?.[0] ?? null);
      i += 3;
      if (!t) return null;
      touches.push(t);
    } else {
      for (const _ of e.tables) {
        const row = rows[i++];
        // A table that is not there (DROP TABLE IF EXISTS) touches nothing.
        if (row?.[0]) touches.push({ table: row[0], rows: row[1] === null ? null : Number(row[1]), bytes: row[2] === null ? null : Number(row[2]) });
      }
    }
  }
  return blastRadius(touches, wanted.some((e) => e.how === 'explain') ? 'explain' : 'catalog');
}

type Json = { [k: string]: unknown };

/** The rows EXPLAIN FORMAT=JSON expects a DELETE or UPDATE to change: its target table's rows (MySQL: × filtered). */
function planned(json: string | null): Touch | null {
  if (!json) return null;
  const target = find(JSON.parse(json) as unknown);
  if (!target) return null;
  const rows = Number(target.rows ?? target.rows_examined_per_scan);
  if (!Number.isFinite(rows)) return null;
  const filtered = target.filtered === undefined ? 100 : Number(target.filtered);
  return { table: String(target.table_name), rows: Number.isFinite(filtered) ? (rows * filtered) / 100 : rows };
}

/** The plan's table that is deleted from or updated. */
function find(v: unknown): Json | null {
  if (Array.isArray(v)) {
    for (const x of v) {
      const f = find(x);
      if (f) return f;
    }
    return null;
  }
  if (!v || typeof v !== 'object') return null;
  const o = v as Json;
  if (typeof o.table_name === 'string' && (o.delete !== undefined || o.update !== undefined)) return o;
  for (const x of Object.values(o)) {
    const f = find(x);
    if (f) return f;
  }
  return null;
}
