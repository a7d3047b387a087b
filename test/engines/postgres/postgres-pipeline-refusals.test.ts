// Refusals inside a pipeline: whatever is still in flight before a refused statement (answers to earlier
// queries, Syncs, other refusals, an open transaction), its error reaches the client as the broker's
// 42501 naming the rule — never as the server's syntax error about the statement sent in its place.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serialize } from 'pg-protocol';
import { direct, psqlEnv, run, sleep, slowAdmission, startTestBroker, type TestBroker } from '../../support/broker.js';
import { openPipeline, pbe, pipeline as send, q, sync } from '../../support/pg-pipeline.js';

const RULES = `
rules:
  - id: no-wipe
    kinds: [destructive]
    action: deny
    message: "wiping tables is not allowed through the broker"
  - { id: day-to-day, kinds: [read, write], action: allow }
default: deny
`;
const REFUSAL = "jit-broker: wiping tables is not allowed through the broker (rule 'no-wipe')";

let t: TestBroker;
let dir: string;
beforeAll(async () => {
  t = await startTestBroker(RULES);
  dir = mkdtempSync(join(tmpdir(), 'jit-pipeline-'));
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_pipe; CREATE TABLE jit_pipe (id int); INSERT INTO jit_pipe VALUES (1), (2)'));
});
afterAll(async () => {
  await t?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_pipe'));
});

const ids = () => direct(async (c) => (await c.query('SELECT id FROM jit_pipe ORDER BY id')).rows.map((r: { id: number }) => r.id));

/** Log in over TLS, send `batch` in one write, and collect the answers up to the `readies`-th ReadyForQuery after it. */
const pipeline = (token: string, batch: Buffer[], readies: number) => send(t, token, batch, readies);

const DENIED = `E:42501:${REFUSAL}`;

describe('simple protocol, several queries in one write', () => {
  it('a refusal after an allowed query is the 42501 refusal, not the syntax error of what was sent in its place', async () => {
    const out = await pipeline(await t.token({ build: 'build-pipe-simple' }), [q('SELECT 1'), q('DELETE FROM jit_pipe')], 2);
    expect(out).toEqual(['rowDescription', 'D:1', 'C:SELECT 1', 'Z:I', DENIED, 'Z:I']);
    expect(await ids()).toEqual([1, 2]);
    const [s] = await t.broker.store.listSessions({ build: 'build-pipe-simple' });
    const st = await t.broker.store.listStatements(s!.id);
    expect(st.map((x) => [x.sql, x.decision, x.ruleId])).toEqual([
      ['SELECT 1', 'allow', 'day-to-day'],
      ['DELETE FROM jit_pipe', 'deny', 'no-wipe'],
    ]);
  });

  it('several refusals pipelined, interleaved with allowed queries, each get their own refusal', async () => {
    const out = await pipeline(
      await t.token(),
      [q('DELETE FROM jit_pipe'), q('SELECT 2'), q('TRUNCATE jit_pipe'), q('DROP TABLE jit_pipe'), q('SELECT 3'), q('DELETE FROM jit_pipe')],
      6,
    );
    expect(out).toEqual([
      DENIED,
      'Z:I',
      'rowDescription',
      'D:2',
      'C:SELECT 1',
      'Z:I',
      DENIED,
      'Z:I',
      DENIED,
      'Z:I',
      'rowDescription',
      'D:3',
      'C:SELECT 1',
      'Z:I',
      DENIED,
      'Z:I',
    ]);
    expect(await ids()).toEqual([1, 2]);
  });

  it('inside a transaction block: refused, then the block is aborted on both sides and COMMIT rolls back', async () => {
    const out = await pipeline(
      await t.token(),
      [q('BEGIN'), q('INSERT INTO jit_pipe VALUES (3)'), q('DELETE FROM jit_pipe'), q('SELECT 1'), q('DELETE FROM jit_pipe'), q('COMMIT')],
      6,
    );
    expect(out).toEqual([
      'C:BEGIN',
      'Z:T',
      'C:INSERT 0 1',
      'Z:T',
      DENIED,
      'Z:E',
      'E:25P02:current transaction is aborted, commands ignored until end of transaction block',
      'Z:E',
      DENIED,
      'Z:E',
      'C:ROLLBACK',
      'Z:I',
    ]);
    expect(await ids()).toEqual([1, 2]);
  });

  it('a statement that merely names the poison tag is not taken for a refusal', async () => {
    const out = await pipeline(await t.token(), [q('DELETE FROM jit_pipe'), q('SELECT JITBROKER_REFUSED_1')], 2);
    expect(out[0]).toBe(DENIED);
    expect(out[2]).toMatch(/^E:42703:column "jitbroker_refused_1" does not exist/);
  });
});

describe('extended protocol, several Syncs in one write', () => {
  it('a refused Parse after a Sync whose answers are still in flight', async () => {
    const out = await pipeline(await t.token({ build: 'build-pipe-ext' }), [...pbe('SELECT 1'), sync, ...pbe('DELETE FROM jit_pipe'), sync], 2);
    expect(out).toEqual(['parseComplete', 'bindComplete', 'D:1', 'C:SELECT 1', 'Z:I', DENIED, 'Z:I']);
    expect(await ids()).toEqual([1, 2]);
  });

  it('refusals in several Sync groups, interleaved with allowed ones; the rest of a refused group is skipped', async () => {
    const out = await pipeline(
      await t.token(),
      [
        ...pbe('DELETE FROM jit_pipe'),
        sync,
        ...pbe('SELECT 2'),
        ...pbe('TRUNCATE jit_pipe'),
        ...pbe('SELECT 3'),
        sync,
        sync,
        ...pbe('SELECT 4'),
        sync,
        ...pbe('DROP TABLE jit_pipe'),
        sync,
      ],
      5,
    );
    expect(out).toEqual([
      DENIED,
      'Z:I',
      'parseComplete',
      'bindComplete',
      'D:2',
      'C:SELECT 1',
      DENIED,
      'Z:I',
      'Z:I',
      'parseComplete',
      'bindComplete',
      'D:4',
      'C:SELECT 1',
      'Z:I',
      DENIED,
      'Z:I',
    ]);
    expect(await ids()).toEqual([1, 2]);
  });

  it('simple and extended mixed in one write, inside a transaction block', async () => {
    const out = await pipeline(
      await t.token(),
      [q('BEGIN'), ...pbe('INSERT INTO jit_pipe VALUES (4)'), sync, ...pbe('DELETE FROM jit_pipe'), sync, q('DELETE FROM jit_pipe'), q('COMMIT')],
      5,
    );
    expect(out).toEqual(['C:BEGIN', 'Z:T', 'parseComplete', 'bindComplete', 'C:INSERT 0 1', 'Z:T', DENIED, 'Z:E', DENIED, 'Z:E', 'C:ROLLBACK', 'Z:I']);
    expect(await ids()).toEqual([1, 2]);
  });
});

/**
 * The same batches while admission is slow (each audit record waits first, as a catalog load or a busy journal
 * makes it wait): the server answers what was already forwarded while later statements are still being
 * decided. Waits of a few milliseconds, one, or a single turn alternate, so the answers land at different
 * points; the client sees exactly the same thing every time.
 */
describe('pipelines while admission is slow', () => {
  const waits = [() => sleep(5), () => sleep(1), () => new Promise<void>((r) => setImmediate(r))];
  const ITERATIONS = 50;

  /** Send `batch` ITERATIONS times over one connection with slow admission; every answer must be `expected`. */
  async function repeatedly(batch: Buffer[], readies: number, expected: string[], build = 'build-pipe-slow'): Promise<void> {
    let n = 0;
    const restore = slowAdmission(t, () => waits[n++ % waits.length]!());
    const c = await openPipeline(t, await t.token({ build }));
    try {
      for (let i = 0; i < ITERATIONS; i++) expect({ i, out: await c.send(batch, readies) }).toEqual({ i, out: expected });
    } finally {
      c.close();
      restore();
    }
    expect(await ids()).toEqual([1, 2]);
  }

  it('simple queries: refusals interleaved with allowed queries', async () => {
    await repeatedly(
      [q('DELETE FROM jit_pipe'), q('SELECT 2'), q('TRUNCATE jit_pipe'), q('DROP TABLE jit_pipe'), q('SELECT 3'), q('DELETE FROM jit_pipe')],
      6,
      [DENIED, 'Z:I', 'rowDescription', 'D:2', 'C:SELECT 1', 'Z:I', DENIED, 'Z:I', DENIED, 'Z:I', 'rowDescription', 'D:3', 'C:SELECT 1', 'Z:I', DENIED, 'Z:I'],
    );
  });

  it('several Sync groups: what follows a refusal in its group is skipped, the next groups run', async () => {
    await repeatedly(
      [
        ...pbe('DELETE FROM jit_pipe'),
        sync,
        ...pbe('SELECT 2'),
        ...pbe('TRUNCATE jit_pipe'),
        ...pbe('SELECT 3'),
        sync,
        sync,
        ...pbe('SELECT 4'),
        sync,
        ...pbe('DROP TABLE jit_pipe'),
        sync,
      ],
      5,
      [
        DENIED,
        'Z:I',
        'parseComplete',
        'bindComplete',
        'D:2',
        'C:SELECT 1',
        DENIED,
        'Z:I',
        'Z:I',
        'parseComplete',
        'bindComplete',
        'D:4',
        'C:SELECT 1',
        'Z:I',
        DENIED,
        'Z:I',
      ],
      'build-pipe-slow-groups',
    );
    // SELECT 3 came after the TRUNCATE's refusal in its group: recorded as allowed, and as never run.
    const [s] = await t.broker.store.listSessions({ build: 'build-pipe-slow-groups' });
    const third = (await t.broker.store.listStatements(s!.id)).filter((x) => x.sql === 'SELECT 3');
    expect(third).toHaveLength(ITERATIONS);
    for (const x of third) expect([x.decision, x.error]).toEqual(['allow', 'skipped after an earlier error']);
  });

  it('simple and extended mixed, inside a transaction block', async () => {
    await repeatedly(
      [q('BEGIN'), ...pbe('INSERT INTO jit_pipe VALUES (4)'), sync, ...pbe('DELETE FROM jit_pipe'), sync, q('DELETE FROM jit_pipe'), q('COMMIT')],
      5,
      ['C:BEGIN', 'Z:T', 'parseComplete', 'bindComplete', 'C:INSERT 0 1', 'Z:T', DENIED, 'Z:E', DENIED, 'Z:E', 'C:ROLLBACK', 'Z:I'],
    );
  });

  it('Describe, Bind and Execute of an allowed statement after a refused Parse in the same group are skipped', async () => {
    await repeatedly(
      [
        serialize.parse({ name: 'ok', text: 'SELECT 10' }),
        serialize.parse({ name: 'bad', text: 'DELETE FROM jit_pipe' }),
        serialize.describe({ type: 'S', name: 'ok' }),
        serialize.bind({ statement: 'ok' }),
        serialize.describe({ type: 'P' }),
        serialize.execute(),
        sync,
        serialize.bind({ statement: 'ok' }),
        serialize.execute(),
        sync,
        ...pbe('SELECT 11'),
        sync,
        serialize.close({ type: 'S', name: 'ok' }),
        sync,
      ],
      4,
      [
        'parseComplete',
        DENIED,
        'Z:I',
        'bindComplete',
        'D:10',
        'C:SELECT 1',
        'Z:I',
        'parseComplete',
        'bindComplete',
        'D:11',
        'C:SELECT 1',
        'Z:I',
        'closeComplete',
        'Z:I',
      ],
    );
  });

  it('a simple query sent before the Sync of a refused group is skipped with the rest of it', async () => {
    await repeatedly([...pbe('DELETE FROM jit_pipe'), q('SELECT 9'), sync, ...pbe('SELECT 12'), sync], 2, [
      DENIED,
      'Z:I',
      'parseComplete',
      'bindComplete',
      'D:12',
      'C:SELECT 1',
      'Z:I',
    ]);
  });
});

describe('pgbench pipeline mode', () => {
  it('the refused statement of a \\startpipeline … \\endpipeline script fails with the 42501 refusal', async () => {
    const script = join(dir, 'pipeline.sql');
    const lines = [
      'BEGIN;',
      '\\startpipeline',
      'SELECT 1;',
      'INSERT INTO jit_pipe VALUES (5);',
      '\\endpipeline',
      '\\startpipeline',
      'SELECT 2;',
      'DELETE FROM jit_pipe;',
      'SELECT 3;',
      'DELETE FROM jit_pipe;',
      '\\endpipeline',
      'END;',
    ];
    writeFileSync(script, `${lines.join('\n')}\n`);
    const r = await run('pgbench', ['-n', '-M', 'extended', '-t', '1', '-f', script], psqlEnv(t, await t.token({ build: 'build-pgbench-pipe' })));
    const output = r.stdout + r.stderr;
    expect(r.code).not.toBe(0);
    // pgbench ends the client at the refusal, showing the broker's error as a server's.
    expect(r.stderr).toContain(`query 0: ERROR:  ${REFUSAL}`);
    expect(output).not.toContain('JITBROKER_REFUSED');
    expect(output).not.toContain('syntax error');
    expect(await ids()).toEqual([1, 2]);
    const [s] = await t.broker.store.listSessions({ build: 'build-pgbench-pipe' });
    const denied = (await t.broker.store.listStatements(s!.id)).filter((x) => x.decision === 'deny');
    // Both DELETEs reached the broker (the server then skipped the second, after the first one's error).
    expect(denied.map((x) => [x.sql, x.ruleId])).toEqual([
      ['DELETE FROM jit_pipe;', 'no-wipe'],
      ['DELETE FROM jit_pipe;', 'no-wipe'],
    ]);
  });
});
