// Micro-benchmark of PostgreSQL classification: what the broker spends per statement before it can decide.
//
// usage: npx tsx bench/classify.ts            (N=50000 statements per scenario, ROUNDS=3; the best round is printed)
//
// Scenarios (every literal is distinct, so the exact-text cache never hits unless said so):
//   pgbench -S, cold parse           classifyPostgres() on `SELECT abalance FROM pgbench_accounts WHERE aid = <n>;`
//   pgbench -S, normalised cache     classify('postgres', …): exact-text miss, literal-normalised hit
//   pgbench -S, key only             pgLiteralKey() alone: the price of asking the normalised cache
//   pgbench -S, same text            classify() of one text over and over: the exact-text cache
//   mixed, exact-text cache only     pgbench's TPC-B script + -S selects + a few app queries, as before this cache
//   mixed, with normalised cache     the same through classify()
//   … + catalog                      the same, then refined against a real catalog snapshot (refinePostgres), as a
//                                    session does; the snapshot is read from CATALOG_FROM (default: the local test
//                                    database), and these rows are skipped when it cannot be read
// For reference, libpg-query's own calls on the -S statement: parseSync, fingerprintSync, normalizeSync.
import { fingerprintSync, normalizeSync, parseSync } from 'libpg-query';
import { loadPostgresCatalog } from '../broker/catalog/postgres.js';
import { classifyPostgres } from '../broker/policy/classify-postgres.js';
import { refinePostgres } from '../broker/policy/pg-refine.js';
import { classify, loadPostgresParser } from '../broker/policy/index.js';
import { Lru } from '../broker/policy/lru.js';
import { pgLiteralKey } from '../broker/policy/pg-literal-key.js';
import type { Classification } from '../broker/types.js';

const N = Number(process.env.N ?? 50_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);

await loadPostgresParser();

let seq = 1_000_000;
const next = () => ++seq;
const selectOnly = () => `SELECT abalance FROM pgbench_accounts WHERE aid = ${next()};`;

/** pgbench's built-in TPC-B script (simple protocol), then -S selects and some application-like queries. */
function mixedStatement(i: number): string {
  const aid = next();
  const delta = (aid % 10_001) - 5000;
  switch (i % 12) {
    case 0:
      return 'BEGIN;';
    case 1:
      return `UPDATE pgbench_accounts SET abalance = abalance + ${delta} WHERE aid = ${aid};`;
    case 2:
      return `SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`;
    case 3:
      return `UPDATE pgbench_tellers SET tbalance = tbalance + ${delta} WHERE tid = ${aid % 100};`;
    case 4:
      return `UPDATE pgbench_branches SET bbalance = bbalance + ${delta} WHERE bid = ${aid % 10};`;
    case 5:
      return `INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (${aid % 100}, ${aid % 10}, ${aid}, ${delta}, CURRENT_TIMESTAMP);`;
    case 6:
      return 'END;';
    case 7:
    case 8:
      return `SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`;
    case 9:
      return `SELECT o.id, o.total, c.email FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.customer_id = ${aid} AND o.status = 'open' ORDER BY o.created_at DESC LIMIT 20`;
    case 10:
      return `SELECT count(*), sum(total) FROM orders WHERE created_at >= '2024-01-01' AND region = 'eu-${aid % 7}'`;
    default:
      return `SELECT id, name FROM products WHERE id IN (${aid}, ${aid + 1}, ${aid + 2})`;
  }
}

function run(name: string, make: (i: number) => string, f: (sql: string) => unknown): void {
  let best = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    const texts = Array.from({ length: N }, (_, i) => make(i)); // built outside the timed loop
    const t0 = process.hrtime.bigint();
    for (const t of texts) f(t);
    const ns = Number(process.hrtime.bigint() - t0);
    best = Math.min(best, ns);
  }
  const perSec = Math.round((N / best) * 1e9);
  console.log(`${name.padEnd(40)} ${perSec.toLocaleString('en-US').padStart(12)} statements/s  ${(best / N / 1000).toFixed(2).padStart(7)} µs each`);
}

// Warm up the JIT and the normalised cache's one entry per shape.
for (let i = 0; i < 5000; i++) {
  classifyPostgres(selectOnly());
  classify('postgres', mixedStatement(i));
}

console.log(`N=${N} per scenario, best of ${ROUNDS}\n`);
run('pgbench -S, cold parse', selectOnly, classifyPostgres);
run('pgbench -S, normalised cache', selectOnly, (s) => classify('postgres', s));
run('pgbench -S, key only', selectOnly, pgLiteralKey);
const same = selectOnly();
run(
  'pgbench -S, same text (exact cache)',
  () => same,
  (s) => classify('postgres', s),
);

const exactOnly = new Lru<string, Classification>(5000);
run('mixed, exact-text cache only', mixedStatement, (s) => {
  let c = exactOnly.get(s);
  if (!c) exactOnly.set(s, (c = classifyPostgres(s)));
  return c;
});
run('mixed, with normalised cache', mixedStatement, (s) => classify('postgres', s));

const from = process.env.CATALOG_FROM ?? 'postgres://postgres@127.0.0.1:5432/test';
const snap = await loadPostgresCatalog({ name: 'bench', engine: 'postgres', upstream: from }).catch((e: unknown) => {
  console.log(`\n(catalog rows skipped: ${from} could not be read: ${String(e)})`);
  return null;
});
if (snap) {
  console.log(`\nrefined against the catalog of ${from.replace(/\/\/[^@]*@/, '//')} (${snap.functionsByOid.size} functions):`);
  run('pgbench -S, normalised cache + catalog', selectOnly, (s) => refinePostgres(classify('postgres', s), snap));
  run(
    'pgbench -S, same text + catalog',
    () => same,
    (s) => refinePostgres(classify('postgres', s), snap),
  );
  run('mixed, with normalised cache + catalog', mixedStatement, (s) => refinePostgres(classify('postgres', s), snap));
}

console.log('\nlibpg-query alone, for reference:');
run('  parseSync (parse + JSON)', selectOnly, parseSync);
run('  fingerprintSync', selectOnly, fingerprintSync);
run('  normalizeSync', selectOnly, normalizeSync);
