// The broker's idea of a client's prepared statements follows the server's through errors: a Parse the server
// fails, refuses or skips (after an earlier error, up to Sync) changes nothing there, so an Execute runs — and
// is decided, held and recorded as — the statement the server really has under that name, never the one the
// failed Parse named. Raw extended-protocol batches against the real PostgreSQL, fast and with slow admission.
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApprovalRequest } from '../../../broker/approvals/index.js';
import { direct, sleep, slowAdmission, startTestBroker, type TestBroker } from '../../support/broker.js';
import { openPipeline, pbe, sync } from '../../support/pg-pipeline.js';

const RULES = `
admin_token: "test-admin-token-0123456789"
rules:
  - { id: held, tables: ["jit_st_held"], kinds: [destructive], action: review, timeout: 60s }
  - { id: no-wipe, kinds: [destructive], action: deny, message: "wiping tables is not allowed through the broker" }
  - { id: day-to-day, kinds: [read, write], action: allow }
default: deny
`;
const DENIED = "E:42501:jit-broker: wiping tables is not allowed through the broker (rule 'no-wipe')";

let t: TestBroker;
beforeAll(async () => {
  t = await startTestBroker(RULES);
  await direct((c) =>
    c.query(
      'DROP TABLE IF EXISTS jit_st_held, jit_st_t; CREATE TABLE jit_st_held (id int); CREATE TABLE jit_st_t (id int); INSERT INTO jit_st_held VALUES (1), (2)',
    ),
  );
});
afterAll(async () => {
  await t?.stop();
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_st_held, jit_st_t'));
});

const parse = (name: string, text: string) => serialize.parse({ name, text });
const bindExecute = (statement: string) => [serialize.bind({ statement }), serialize.execute()];
const EXISTS = 'E:42P05:prepared statement "n" already exists';

/** What was recorded for a build, as [sql, protocol, decision]. */
async function recorded(build: string): Promise<string[][]> {
  const [s] = await t.broker.store.listSessions({ build });
  return (await t.broker.store.listStatements(s!.id)).map((x) => [x.sql, x.protocol, x.decision]);
}
const executions = async (build: string) => (await recorded(build)).filter(([, protocol]) => protocol === 'execute').map(([sql]) => sql);

describe('a Parse that does not take effect upstream', () => {
  it('a second Parse of a statement name fails on the server: executions still run and are recorded as the first', async () => {
    const c = await openPipeline(t, await t.token({ build: 'build-st-dup' }));
    expect(await c.send([parse('n', 'SELECT 1'), sync], 1)).toEqual(['parseComplete', 'Z:I']);
    expect(await c.send([parse('n', 'SELECT 2'), sync], 1)).toEqual([EXISTS, 'Z:I']);
    expect(await c.send([...bindExecute('n'), sync], 1)).toEqual(['bindComplete', 'D:1', 'C:SELECT 1', 'Z:I']);
    c.close();
    expect(await recorded('build-st-dup')).toEqual([['SELECT 1', 'execute', 'allow']]);
  });

  it('a statement held for review is not released by a failing Parse of an allowed one under its name', async () => {
    const c = await openPipeline(t, await t.token({ build: 'build-st-held' }));
    expect(await c.send([parse('n', 'DELETE FROM jit_st_held'), sync], 1)).toEqual(['parseComplete', 'Z:I']);
    expect(await c.send([parse('n', 'SELECT 1'), sync], 1)).toEqual([EXISTS, 'Z:I']);
    const held = new Promise<ApprovalRequest>((resolve) => {
      const off = t.broker.approvals.on((e) => {
        if (e.type !== 'requested') return;
        off();
        resolve(e.request);
      });
    });
    const out = c.send([...bindExecute('n'), sync], 1);
    const request = await Promise.race([held, out.then((o) => Promise.reject(new Error(`ran without being held: ${o.join(', ')}`)))]);
    expect(request.sql).toBe('DELETE FROM jit_st_held');
    await t.broker.approvals.decide(request.id, { approve: false, by: 'U1' });
    const [bound, refused, ready] = await out;
    expect([bound, ready]).toEqual(['bindComplete', 'Z:I']);
    expect(refused).toMatch(/^E:42501:jit-broker: denied by U1/);
    c.close();
    expect(await direct(async (d) => (await d.query('SELECT count(*)::int AS n FROM jit_st_held')).rows[0].n)).toBe(2);
  });

  it('a refused Parse under the name of a prepared statement leaves that statement, and its executions recorded', async () => {
    const c = await openPipeline(t, await t.token({ build: 'build-st-refused' }));
    expect(await c.send([parse('n', 'SELECT 1'), sync], 1)).toEqual(['parseComplete', 'Z:I']);
    expect(await c.send([parse('n', 'DELETE FROM jit_st_t'), sync], 1)).toEqual([DENIED, 'Z:I']);
    expect(await c.send([...bindExecute('n'), sync], 1)).toEqual(['bindComplete', 'D:1', 'C:SELECT 1', 'Z:I']);
    c.close();
    expect(await recorded('build-st-refused')).toEqual([
      ['DELETE FROM jit_st_t', 'parse', 'deny'],
      ['SELECT 1', 'execute', 'allow'],
    ]);
  });
});

describe('messages the server skips after an error, up to Sync', () => {
  const waits = [() => sleep(5), () => sleep(1), () => new Promise<void>((r) => setImmediate(r))];

  /** `batch` 50 times over one connection, admission fast and slow in turn; every answer must be `expected`. */
  async function repeatedly(build: string, batch: Buffer[], readies: number, expected: string[]): Promise<void> {
    const c = await openPipeline(t, await t.token({ build }));
    let n = 0;
    let restore: (() => void) | null = null;
    try {
      for (let i = 0; i < 50; i++) {
        restore = i % 2 ? slowAdmission(t, () => waits[n++ % waits.length]!()) : null;
        expect({ i, out: await c.send(batch, readies) }).toEqual({ i, out: expected });
        restore?.();
        restore = null;
      }
    } finally {
      restore?.();
      c.close();
    }
  }

  it('a skipped Parse of the unnamed statement: the next group binds the one before it, recorded as such', async () => {
    await repeatedly(
      'build-st-unnamed',
      [...pbe('SELECT 1'), sync, parse('bad', 'DELETE FROM jit_st_t'), parse('', 'SELECT 2'), sync, ...bindExecute(''), sync],
      3,
      ['parseComplete', 'bindComplete', 'D:1', 'C:SELECT 1', 'Z:I', DENIED, 'Z:I', 'bindComplete', 'D:1', 'C:SELECT 1', 'Z:I'],
    );
    expect(await executions('build-st-unnamed')).toEqual(Array(100).fill('SELECT 1'));
  });

  it('a skipped Close of a statement: it is still there, and its executions are recorded', async () => {
    await repeatedly(
      'build-st-close',
      [
        parse('n', 'SELECT 1'),
        sync,
        ...pbe('DELETE FROM jit_st_t'),
        serialize.close({ type: 'S', name: 'n' }),
        sync,
        ...bindExecute('n'),
        sync,
        serialize.close({ type: 'S', name: 'n' }),
        sync,
      ],
      4,
      ['parseComplete', 'Z:I', DENIED, 'Z:I', 'bindComplete', 'D:1', 'C:SELECT 1', 'Z:I', 'closeComplete', 'Z:I'],
    );
    expect(await executions('build-st-close')).toEqual(Array(50).fill('SELECT 1'));
  });

  it('a duplicate Parse and the Bind of its name in the next Sync group, in one write', async () => {
    await repeatedly(
      'build-st-pipelined',
      [parse('n', 'SELECT 1'), sync, parse('n', 'SELECT 2'), sync, ...bindExecute('n'), sync, serialize.close({ type: 'S', name: 'n' }), sync],
      4,
      ['parseComplete', 'Z:I', EXISTS, 'Z:I', 'bindComplete', 'D:1', 'C:SELECT 1', 'Z:I', 'closeComplete', 'Z:I'],
    );
    expect(await executions('build-st-pipelined')).toEqual(Array(50).fill('SELECT 1'));
  });

  it('a Bind that waits for the answers of an earlier group gets them through, however large', async () => {
    const rows = "SELECT repeat('x', 100) FROM generate_series(1, 2000)";
    const c = await openPipeline(t, await t.token({ build: 'build-st-large' }));
    const out = await c.send([parse('n', rows), ...bindExecute('n'), sync, ...bindExecute('n'), sync, serialize.close({ type: 'S', name: 'n' }), sync], 3);
    c.close();
    const result = ['bindComplete', ...Array<string>(2000).fill(`D:${'x'.repeat(100)}`), 'C:SELECT 2000', 'Z:I'];
    expect(out).toEqual(['parseComplete', ...result, ...result, 'closeComplete', 'Z:I']);
  });
});
