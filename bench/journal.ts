// The audit journal's cost per statement, on its own: CPU of the broker thread (the append: JSON, the
// record's CRC32C, one write per turn) and of the indexer (decode + the store's transaction), per record,
// for a statement and its outcome as the broker writes them. Prints figures; asserts nothing.
// usage: npx tsx bench/journal.ts [statements=200000] [per-turn=8]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JournalIndexer } from '../broker/audit/journal/indexer.js';
import { journalId } from '../broker/audit/journal/segments.js';
import { JournalWriter } from '../broker/audit/journal/writer.js';
import { openSqliteStore } from '../broker/store/sqlite.js';

const total = Number(process.argv[2] ?? 200_000);
const perTurn = Number(process.argv[3] ?? 8);
const dir = mkdtempSync(join(tmpdir(), 'jit-bench-journal-'));
const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

const store = await openSqliteStore(join(dir, 'jit.db'));
const writer = new JournalWriter({ dir: join(dir, 'journal'), segment: 1, durability: 'os', segmentBytes: 64 * 1024 * 1024 });
await writer.append({
  t: 'open',
  id: 's_bench',
  target: 'app',
  engine: 'postgres',
  subject: 'ci:bench',
  issuer: 'https://ci',
  build: 'b',
  claims: {},
  actors: [],
  tokenId: null,
  clientAddress: '127.0.0.1',
  clientPort: 1,
  clientApplication: 'pgbench',
  dbUser: 'ci',
  tls: true,
  startedAt: Date.now(),
});
const sql = 'SELECT abalance FROM pgbench_accounts WHERE aid = $1;';
const t0 = cpu();
const w0 = performance.now();
let id = 1;
while (id <= total) {
  const turn: Promise<void>[] = [];
  for (let i = 0; i < perTurn && id <= total; i++, id++) {
    turn.push(
      writer.append({
        t: 'stmt',
        id,
        sessionId: 's_bench',
        seq: id,
        sql,
        protocol: 'execute',
        kinds: ['read'],
        decision: 'allow',
        ruleId: 'rw',
        message: null,
        startedAt: Date.now(),
        approvalId: null,
      }),
    );
    turn.push(writer.append({ t: 'done', id: id - 1 || 1, durationMs: 0.08, tag: 'SELECT 1', rows: 1, error: null, sample: null }));
  }
  await Promise.all(turn);
}
const appendCpu = cpu() - t0;
const wall = performance.now() - w0;
await writer.close();
const i0 = cpu();
const indexer = await JournalIndexer.open({ dir: join(dir, 'journal'), journal: journalId(join(dir, 'journal')), store });
const events = await indexer.catchUp();
const indexCpu = cpu() - i0;
const s = writer.stats;
console.log(`statements ${total}, ${perTurn} per turn (records: a statement and an outcome each)`);
console.log(`append (broker thread): ${(appendCpu / total).toFixed(2)} µs CPU per statement, ${((wall * 1000) / total).toFixed(2)} µs wall`);
console.log(`journal: ${s.records} records, ${s.writes} writes, ${(s.bytes / total).toFixed(0)} bytes per statement`);
console.log(`index (indexer thread): ${(indexCpu / total).toFixed(2)} µs CPU per statement (${events} events)`);
await store.close();
rmSync(dir, { recursive: true, force: true });
