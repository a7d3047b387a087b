// Approval release latency across replicas: a statement held on replica A, approved through replica B's
// HTTP API; the time from B's answer to the client's statement completing on A (B's conditional write, the
// LISTEN/NOTIFY notice, A's read of the store, the release and the statement itself). Two broker processes
// on one PostgreSQL store (a database of its own), as test/fleet does. Prints figures; asserts nothing.
// usage: npx tsx bench/fleet-approvals.ts [approvals=100]
import { direct } from '../test/support/broker.js';
import { clientOf, startFleet } from '../test/support/fleet.js';

const n = Number(process.argv[2] ?? 100);
const fleet = await startFleet({
  rules: `rules:
  - { id: rw, kinds: [read, write], action: allow }
  - { id: truncates, kinds: [destructive], action: review, timeout: 10m }
default: deny`,
  lease: '30s',
});
try {
  const a = await fleet.start('a');
  const b = await fleet.start('b');
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_bench_fleet; CREATE TABLE jit_bench_fleet (id int)'));
  const c = await clientOf(a, await fleet.token('bench/fleet'));
  const latencies: number[] = [];
  for (let i = 0; i < n; i++) {
    const done = c.query('TRUNCATE jit_bench_fleet').then(() => performance.now());
    let id: string | undefined;
    while (!id) {
      const r = await b.api('GET', '/api/approvals?state=pending');
      id = (r.json as { approvals: { id: string }[] }).approvals[0]?.id;
    }
    const t0 = performance.now();
    const res = await b.api('POST', `/api/approvals/${id}/approve`, { by: 'bench' });
    if (res.status !== 200) throw new Error(`approve answered ${res.status}: ${JSON.stringify(res.json)}`);
    const t1 = await done;
    latencies.push(t1 - t0);
  }
  await c.end();
  latencies.sort((x, y) => x - y);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
  console.log(`approval release across replicas (held on a, approved through b's HTTP API), ${n} approvals:`);
  console.log(`p50 ${q(0.5).toFixed(1)} ms, p90 ${q(0.9).toFixed(1)} ms, p99 ${q(0.99).toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms`);
  console.log('(from the approve call to the statement completing on a: includes the approve HTTP round trip and the TRUNCATE itself)');
} finally {
  await fleet.stop();
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_bench_fleet'));
}
