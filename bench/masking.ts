// What masking costs: a 100k-row SELECT read directly from PostgreSQL, through the broker without masking,
// with one column masked by a column rule, and with detectors over every text column; rows/s of each and
// the ratios. Plaintext everywhere (loopback), so TLS does not blur the figures; the client is a raw
// protocol reader that only counts rows, so the figures are the server's and the broker's.
//
// usage: npx tsx bench/masking.ts          (ROWS=100000 RUNS=7; JIT_TEST_PG for the upstream)
import net from 'node:net';
import { serialize } from 'pg-protocol';
import { direct, startTestBroker, UPSTREAM } from '../test/support/broker.js';

const ROWS = Number(process.env.ROWS ?? 100_000);
const RUNS = Number(process.env.RUNS ?? 7);
const SQL = 'SELECT id, email, name, note FROM jit_bench_mask';

/** Connect (trust or cleartext password), run SQL once per `runs`, return each run's ms and row count. */
async function timeQuery(
  host: string,
  port: number,
  startup: Record<string, string>,
  password: string | null,
  runs: number,
): Promise<{ ms: number[]; rows: number }> {
  const s = net.connect(port, host);
  s.setNoDelay(true);
  let buf: Buffer = Buffer.alloc(0);
  let rows = 0;
  let onReady: () => void = () => {};
  let finished = false;
  s.on('data', (d: Buffer) => {
    if (finished) return;
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    let pos = 0;
    while (buf.length - pos >= 5) {
      const len = buf.readInt32BE(pos + 1);
      if (buf.length - pos < len + 1) break;
      const type = buf[pos];
      if (type === 0x44) rows++;
      else if (type === 0x52 && buf.readInt32BE(pos + 5) === 3) s.write(serialize.password(password ?? ''));
      else if (type === 0x45) throw new Error(buf.toString('utf8', pos + 5, pos + 1 + len));
      else if (type === 0x5a) onReady();
      pos += len + 1;
    }
    buf = buf.subarray(pos);
  });
  const ready = () => new Promise<void>((r) => (onReady = r));
  const first = ready();
  s.write(serialize.startup(startup));
  await first;
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    rows = 0;
    const done = ready();
    const t0 = performance.now();
    s.write(serialize.query(SQL));
    await done;
    ms.push(performance.now() - t0);
  }
  finished = true;
  s.end(serialize.end());
  return { ms, rows };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  await direct((c) =>
    c.query(`DROP TABLE IF EXISTS jit_bench_mask;
      CREATE TABLE jit_bench_mask AS SELECT g AS id, 'user' || g || '@example.com' AS email, 'Customer ' || g AS name,
        'order ' || g || ' shipped to the usual address, no issues reported' AS note FROM generate_series(1, ${ROWS}) g`),
  );
  await direct((c) => c.query('VACUUM ANALYZE jit_bench_mask'));
  const t = await startTestBroker(
    `
rules:
  - { id: reads, kinds: [read], action: allow }
masking:
  - { columns: ["jit_bench_mask.email"], with: email, claims: { environment: column } }
  - { detect: [card, email, ssn], with: redact, claims: { environment: detect } }
`,
    { plaintext: true },
  );
  try {
    const up = new URL(UPSTREAM);
    const directRun = () =>
      timeQuery(
        up.hostname,
        Number(up.port || 5432),
        { user: decodeURIComponent(up.username || 'postgres'), database: up.pathname.slice(1) },
        decodeURIComponent(up.password) || null,
        RUNS,
      );
    const brokerRun = async (environment?: string) =>
      timeQuery(t.host, t.port, { user: 'ci', database: 'app' }, await t.token(environment ? { claims: { environment } } : {}), RUNS);
    const results: [string, { ms: number[]; rows: number }][] = [];
    // Warm up each path once (JIT, catalog cache), then measure.
    for (const [name, run] of [
      ['direct', directRun],
      ['broker, masking off', () => brokerRun()],
      ['broker, 1 column masked (email)', () => brokerRun('column')],
      ['broker, detectors on every text column', () => brokerRun('detect')],
    ] as const) {
      await run();
      results.push([name, await run()]);
    }
    const rate = (r: { ms: number[]; rows: number }) => r.rows / (median(r.ms) / 1000);
    const base = rate(results[0]![1]);
    const off = rate(results[1]![1]);
    console.log(`${ROWS} rows x 4 columns, median of ${RUNS} runs per line`);
    for (const [name, r] of results) {
      const x = rate(r);
      console.log(
        `${name.padEnd(42)} ${median(r.ms).toFixed(1).padStart(8)} ms  ${Math.round(x).toLocaleString('en').padStart(12)} rows/s` +
          `  x${(base / x).toFixed(2)} vs direct  x${(off / x).toFixed(2)} vs broker off`,
      );
    }
    const rss = process.memoryUsage().rss / 1024 / 1024;
    console.log(`process RSS at the end (broker + client in one process): ${rss.toFixed(0)} MB`);
  } finally {
    await t.stop();
    await direct((c) => c.query('DROP TABLE IF EXISTS jit_bench_mask'));
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
