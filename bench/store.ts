// Micro-benchmark of the store's hot path: recordStatement (write-ahead, awaited before a statement
// goes upstream) and completeStatement (its outcome), on a file store configured as the broker runs
// it (WAL, synchronous=NORMAL). Prints records/s, µs of wall time and of process CPU per statement,
// and how many calls (records + completes) each commit carried when the store counts its commits.
//
// usage: npx tsx bench/store.ts            (N=20000 statements per scenario, CLIENTS=8, ROUNDS=3)
//
// Scenarios:
//   sequential record            one client: await recordStatement, nothing else
//   sequential record+complete   one client: await recordStatement, then await completeStatement
//   N clients record+complete    the `pgbench -S` shape: N sessions, each in a loop awaits its own
//                                record, then its complete (each client is sequential, they overlap)
//   N clients, complete unawaited  as BrokerSession does it: the complete is fire-and-forget
// The best of ROUNDS runs is printed (each on a fresh store file).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type NewSession, type NewStatement, type Store } from '../broker/store/index.js';

const N = Number(process.env.N ?? 20_000);
const CLIENTS = Number(process.env.CLIENTS ?? 8);
const ROUNDS = Number(process.env.ROUNDS ?? 3);

function newSession(i: number): NewSession {
  return {
    target: 'app',
    engine: 'postgres',
    identity: {
      subject: 'local:bench',
      issuer: 'http://127.0.0.1:28080',
      build: 'bench',
      claims: { build: 'bench' },
      actors: [],
      tokenId: `jti-${i}`,
      expiresAt: new Date(Date.now() + 3_600_000),
    },
    client: { address: '127.0.0.1', port: 40_000 + i, application: 'pgbench', user: 'app', tls: false },
    startedAt: new Date(),
  };
}

function statement(sessionId: string): NewStatement {
  return {
    sessionId,
    sql: 'SELECT abalance FROM pgbench_accounts WHERE aid = 48213;',
    protocol: 'simple',
    kinds: ['read'],
    decision: 'allow',
    ruleId: 'day-to-day',
    message: null,
    startedAt: new Date(),
  };
}

const OUTCOME = { durationMs: 0.12, tag: 'SELECT 1', rows: 1, error: null };

interface Scenario {
  name: string;
  clients: number;
  complete: 'none' | 'awaited' | 'unawaited';
}

async function client(store: Store, sessionId: string, n: number, complete: Scenario['complete']): Promise<void> {
  for (let i = 0; i < n; i++) {
    const id = await store.recordStatement(statement(sessionId));
    if (complete === 'awaited') await store.completeStatement(id, OUTCOME);
    else if (complete === 'unawaited') void store.completeStatement(id, OUTCOME);
  }
}

/** Commits so far, when the store counts them (the group-committing SqliteStore does). */
function commits(store: Store): number | null {
  const n = (store as { commits?: unknown }).commits;
  return typeof n === 'number' ? n : null;
}

async function run(s: Scenario): Promise<{ perSec: number; wallUs: number; cpuUs: number; perCommit: number | null }> {
  const dir = mkdtempSync(join(tmpdir(), 'jit-bench-store-'));
  const store = await openStore(`sqlite:${join(dir, 'bench.db')}`);
  try {
    const sessions: string[] = [];
    for (let i = 0; i < s.clients; i++) sessions.push(await store.createSession(newSession(i)));
    const per = Math.floor(N / s.clients);
    await Promise.all(sessions.map((id) => client(store, id, 200, s.complete))); // warm-up
    const commits0 = commits(store);
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await Promise.all(sessions.map((id) => client(store, id, per, s.complete)));
    const wallNs = Number(process.hrtime.bigint() - t0);
    const cpu = process.cpuUsage(cpu0);
    const commits1 = commits(store);
    await store.close(); // lands any unawaited completes before the check below
    const total = per * s.clients;
    const check = await openStore(`sqlite:${join(dir, 'bench.db')}`);
    try {
      for (const id of sessions) {
        const got = await check.getSession(id);
        if (got?.statementCount !== per + 200) throw new Error(`bench: session ${id} has ${got?.statementCount} statements, expected ${per + 200}`);
        if (s.complete !== 'none') {
          const open = (await check.listStatements(id)).filter((r) => r.durationMs === null).length;
          if (open) throw new Error(`bench: ${open} statements of ${id} were never completed`);
        }
      }
    } finally {
      await check.close();
    }
    // Records and completes written per commit (group commit's batch size); null for a store that does not count.
    const calls = total * (s.complete === 'none' ? 1 : 2);
    const perCommit = commits0 !== null && commits1 !== null && commits1 > commits0 ? calls / (commits1 - commits0) : null;
    return { perSec: total / (wallNs / 1e9), wallUs: wallNs / 1e3 / total, cpuUs: (cpu.user + cpu.system) / total, perCommit };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const scenarios: Scenario[] = [
  { name: 'sequential record', clients: 1, complete: 'none' },
  { name: 'sequential record+complete', clients: 1, complete: 'awaited' },
  { name: `${CLIENTS} clients record+complete`, clients: CLIENTS, complete: 'awaited' },
  { name: `${CLIENTS} clients, complete unawaited`, clients: CLIENTS, complete: 'unawaited' },
];

console.log(`store micro-benchmark: ${N} statements per scenario, best of ${ROUNDS} (node ${process.version})`);
console.log(`${'scenario'.padEnd(34)} ${'records/s'.padStart(10)} ${'wall µs/stmt'.padStart(13)} ${'cpu µs/stmt'.padStart(12)} ${'calls/commit'.padStart(13)}`);
for (const s of scenarios) {
  let best: Awaited<ReturnType<typeof run>> | null = null;
  for (let r = 0; r < ROUNDS; r++) {
    const got = await run(s);
    if (!best || got.perSec > best.perSec) best = got;
  }
  if (!best) continue;
  console.log(
    `${s.name.padEnd(34)} ${best.perSec.toFixed(0).padStart(10)} ${best.wallUs.toFixed(1).padStart(13)} ${best.cpuUs.toFixed(1).padStart(12)} ${(best.perCommit?.toFixed(1) ?? '-').padStart(13)}`,
  );
}
