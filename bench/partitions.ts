// What partitions cost the catalog: loading a target with many partitions, and judging a statement on their parent.
//
// usage: npx tsx bench/partitions.ts      (PARTS=10000 partitions of one table, then as many again as 100 × PARTS/100
//                                          on two levels; ROUNDS=3, the best round printed; in a throwaway database
//                                          on JIT_TEST_PG, default postgres://postgres@127.0.0.1:5432/test)
//
//   load, no partitions            loadPostgresCatalog() of the empty database
//   load, PARTS flat               … with PARTS partitions of one table
//   load, … + nested               … and 100 partitions of another table, each with PARTS/100 partitions of its own
//   refine + decide, flat parent   refinePostgres() and decide() of `SELECT * FROM flat WHERE id = <n>`, a fresh text
//                                  each time (no cache), under a deny on one partition and an allow of reads
import pg from 'pg';
import { loadPostgresCatalog } from '../broker/catalog/postgres.js';
import type { CatalogSnapshot } from '../broker/catalog/types.js';
import { classifyPostgres } from '../broker/policy/classify-postgres.js';
import { decide, loadPostgresParser, type PolicyConfig } from '../broker/policy/index.js';
import { refinePostgres } from '../broker/policy/pg-refine.js';

const PARTS = Number(process.env.PARTS ?? 10_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const UPSTREAM = process.env.JIT_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const DB = `jit_bench_parts_${process.pid}`;

const dbUrl = (db: string) => {
  const u = new URL(UPSTREAM);
  u.pathname = `/${db}`;
  return u.toString();
};

async function sql(url: string, text: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

const print = (label: string, ms: number) => console.log(`${label.padEnd(44)} ${ms.toFixed(2).padStart(9)} ms`);

const target = { name: 'bench', engine: 'postgres' as const, upstream: dbUrl(DB) };

async function load(label: string): Promise<CatalogSnapshot> {
  let ms = Infinity;
  let snap: CatalogSnapshot | undefined;
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now();
    snap = await loadPostgresCatalog(target, { timeoutMs: 60_000 });
    ms = Math.min(ms, performance.now() - t0);
  }
  print(label, ms);
  return snap!;
}

await loadPostgresParser();
await sql(UPSTREAM, `CREATE DATABASE ${DB}`);
try {
  await load('load, no partitions');
  // One transaction per 500 tables: all at once would need more locks than max_locks_per_transaction allows.
  await sql(dbUrl(DB), 'CREATE TABLE flat (id int) PARTITION BY LIST (id)');
  await sql(
    dbUrl(DB),
    `DO $$ BEGIN FOR i IN 1..${PARTS} LOOP
      EXECUTE format('CREATE TABLE flat_%s PARTITION OF flat FOR VALUES IN (%s)', i, i);
      IF i % 500 = 0 THEN COMMIT; END IF;
    END LOOP; END $$`,
  );
  await load(`load, ${PARTS} flat`);
  const per = Math.max(1, Math.floor(PARTS / 100));
  await sql(dbUrl(DB), 'CREATE TABLE nested (a int, b int) PARTITION BY LIST (a)');
  await sql(
    dbUrl(DB),
    `DO $$ BEGIN FOR i IN 1..100 LOOP
      EXECUTE format('CREATE TABLE nested_%s PARTITION OF nested FOR VALUES IN (%s) PARTITION BY LIST (b)', i, i);
      FOR j IN 1..${per} LOOP EXECUTE format('CREATE TABLE nested_%s_%s PARTITION OF nested_%s FOR VALUES IN (%s)', i, j, i, j); END LOOP;
      COMMIT;
    END LOOP; END $$`,
  );
  const snap = await load(`load, ${PARTS} flat + 100 × ${per} nested`);
  console.log(`  parents: ${snap.parents?.size}; below nested: ${snap.parents?.get('nested')?.[0]?.descendants.length}`);

  const policy: PolicyConfig = {
    rules: [
      { id: 'no-secret', tables: [`flat_${PARTS}`], action: 'deny' },
      { id: 'reads', kinds: ['read'], action: 'allow' },
    ],
    default: 'deny',
  };
  const who = { subject: 'bench', issuer: 'bench', build: null, claims: {}, actors: [], tokenId: null, expiresAt: new Date(Date.now() + 3600_000) };
  const N = 200;
  let per1 = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const d = decide(policy, who, 'bench', refinePostgres(classifyPostgres(`SELECT * FROM flat WHERE id = ${r * N + i}`), snap));
      if (d.ruleId !== 'no-secret') throw new Error(`decided by ${d.ruleId}`);
    }
    per1 = Math.min(per1, (performance.now() - t0) / N);
  }
  print('refine + decide, flat parent (per statement)', per1);
} finally {
  await sql(UPSTREAM, `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
}
