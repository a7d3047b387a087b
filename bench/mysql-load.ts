// Point-select load for bench/mysql.sh: N mysql2 connections, each running one statement after another for
// a fixed time, as text queries (COM_QUERY) or prepared statements (COM_STMT_EXECUTE). Prints one JSON line.
//
// usage: npx tsx bench/mysql-load.ts --port 3306 --user root [--password P] [--database test] [--tls]
//          [--cleartext] --clients 8 --seconds 10 --mode text|prepared --rows 10000 [--table jit_bench_point]
import { parseArgs } from 'node:util';
import mysql from 'mysql2/promise';

const { values: o } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '3306' },
    user: { type: 'string', default: 'root' },
    password: { type: 'string', default: '' },
    database: { type: 'string', default: 'test' },
    tls: { type: 'boolean', default: false },
    cleartext: { type: 'boolean', default: false },
    clients: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '10' },
    mode: { type: 'string', default: 'text' },
    rows: { type: 'string', default: '10000' },
    table: { type: 'string', default: 'jit_bench_point' },
  },
});
const clients = Number(o.clients);
const seconds = Number(o.seconds);
const rows = Number(o.rows);
if (o.mode !== 'text' && o.mode !== 'prepared') throw new Error('--mode is text or prepared');
const sql = `SELECT v FROM ${o.table} WHERE id = ?`;

const conns = await Promise.all(
  Array.from({ length: clients }, () =>
    mysql.createConnection({
      host: o.host,
      port: Number(o.port),
      user: o.user,
      password: o.password,
      database: o.database,
      ...(o.tls ? { ssl: { rejectUnauthorized: false } } : {}),
      enableCleartextPlugin: o.cleartext,
    }),
  ),
);

let done = 0;
let errors = 0;
const latencies: number[] = [];
const until = performance.now() + seconds * 1000;
const started = performance.now();
await Promise.all(
  conns.map(async (c) => {
    while (performance.now() < until) {
      const id = 1 + Math.floor(Math.random() * rows);
      const t0 = performance.now();
      try {
        if (o.mode === 'prepared') await c.execute(sql, [id]);
        else await c.query(sql, [id]);
        done++;
        if (done % 16 === 0) latencies.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  }),
);
const elapsed = (performance.now() - started) / 1000;
await Promise.all(conns.map((c) => c.end()));
latencies.sort((a, b) => a - b);
const pct = (p: number) => Number((latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0).toFixed(3));
process.stdout.write(`${JSON.stringify({ qps: Math.round(done / elapsed), queries: done, errors, p50ms: pct(0.5), p99ms: pct(0.99) })}\n`);
