// Statements and portals the client made without the extended protocol — SQL PREPARE, DECLARE, a function that
// opens a refcursor, a statement prepared again by SQL under a name a Parse used — then run with protocol Bind,
// Execute or Describe (security issue 10). None may run unrecorded or unmasked: a Bind of a statement the broker
// did not see parsed is decided, held and recorded as the SQL `EXECUTE name` it amounts to and its rows are masked
// by the portal's own description; an Execute or Describe of a portal the broker did not bind is refused (use
// FETCH, which is recorded and masked). Raw extended-protocol batches and node-postgres, against the real PostgreSQL.
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ApprovalRequest } from '../../../broker/approvals/index.js';
import { direct, sleep, slowAdmission, startTestBroker, type TestBroker } from '../../support/broker.js';
import { openPipeline, q, sync, type PipelineConnection } from '../../support/pg-pipeline.js';

const CONFIG = `
admin_token: "test-admin-token-0123456789"
rules:
  - { id: held, tables: ["jit_ub_held"], kinds: [destructive], action: review, timeout: 60s }
  - { id: odd-held, subjects: ["ci:odd"], kinds: [unknown], action: review, timeout: 60s }
  - { id: day-to-day, kinds: [read, write], action: allow }
default: deny
masking:
  rules:
    - { columns: ["jit_ub_people.email"], with: email }
    - { columns: ["jit_ub_people.ssn"], with: redact }
`;

const SETUP = `
DROP TABLE IF EXISTS jit_ub_people, jit_ub_held;
DROP FUNCTION IF EXISTS jit_ub_open(refcursor), jit_ub_prep();
CREATE TABLE jit_ub_people (id int PRIMARY KEY, email text, ssn text);
INSERT INTO jit_ub_people VALUES (1, 'alice.martin@example.com', '123-45-6789'), (2, 'bob.stone@example.net', '234-56-7890');
CREATE TABLE jit_ub_held (id int);
INSERT INTO jit_ub_held VALUES (1), (2);
CREATE FUNCTION jit_ub_open(c refcursor) RETURNS refcursor LANGUAGE plpgsql AS $$
BEGIN OPEN c FOR SELECT email, ssn FROM jit_ub_people ORDER BY id; RETURN c; END $$;
CREATE FUNCTION jit_ub_prep() RETURNS void LANGUAGE plpgsql AS $$
BEGIN EXECUTE 'PREPARE x AS DELETE FROM jit_ub_held'; END $$;
`;

const ALICE = 'D:a***@e***.com,****';
const BOB = 'D:b***@e***.net,****';
const RAW = ['alice.martin@example.com', 'bob.stone@example.net', '123-45-6789', '234-56-7890'];

let t: TestBroker;
beforeAll(async () => {
  t = await startTestBroker(CONFIG);
  await direct((c) => c.query(SETUP));
});
beforeEach(() => direct((c) => c.query('TRUNCATE jit_ub_held; INSERT INTO jit_ub_held VALUES (1), (2)')));
afterAll(async () => {
  await t?.stop();
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_ub_people, jit_ub_held; DROP FUNCTION IF EXISTS jit_ub_open(refcursor), jit_ub_prep()'));
});

const parse = (name: string, text: string) => serialize.parse({ name, text });
const bind = (statement: string, portal = '', values: string[] = []) => serialize.bind({ statement, portal, values });
const execute = (portal = '') => serialize.execute({ portal });
const describeP = (name = '') => serialize.describe({ type: 'P', name });

/** What was recorded for a build, as [sql, protocol, decision, rule]. */
async function recorded(build: string): Promise<string[][]> {
  const [s] = await t.broker.store.listSessions({ build });
  return (await t.broker.store.listStatements(s!.id)).map((x) => [x.sql, x.protocol, x.decision, x.ruleId ?? '']);
}

async function session(build: string, subject?: string): Promise<PipelineConnection> {
  return openPipeline(t, await t.token({ build, subject }));
}

const noRaw = (out: string[]) => RAW.filter((v) => out.some((m) => m.includes(v)));
const heldCount = () => direct(async (d) => (await d.query('SELECT count(*)::int AS n FROM jit_ub_held')).rows[0].n as number);

/** The next approval request made, decided by `approve`. */
function nextRequest(): Promise<ApprovalRequest> {
  return new Promise<ApprovalRequest>((resolve) => {
    const off = t.broker.approvals.on((e) => {
      if (e.type !== 'requested') return;
      off();
      resolve(e.request);
    });
  });
}

describe('a statement made with SQL PREPARE, run with protocol Bind/Execute', () => {
  it('is decided and recorded as EXECUTE of it, and its rows are masked, described or not, in text and binary', async () => {
    const c = await session('build-ub-prepare');
    expect(await c.send([q('PREPARE s AS SELECT email, ssn FROM jit_ub_people ORDER BY id')], 1)).toEqual(['C:PREPARE', 'Z:I']);
    // Never described by the client: the broker describes the portal itself.
    expect(await c.send([bind('s'), execute(), sync], 1)).toEqual(['bindComplete', ALICE, BOB, 'C:SELECT 2', 'Z:I']);
    expect(await c.send([bind('s'), describeP(), execute(), sync], 1)).toEqual(['bindComplete', 'rowDescription', ALICE, BOB, 'C:SELECT 2', 'Z:I']);
    const binary = await c.send([serialize.bind({ statement: 's', binary: true }), execute(), sync], 1);
    expect(binary).toEqual(['bindComplete', ALICE, BOB, 'C:SELECT 2', 'Z:I']);
    // With parameters, into a named portal, and run in two steps.
    expect(await c.send([q('PREPARE p(int) AS SELECT email, ssn FROM jit_ub_people WHERE id >= $1 ORDER BY id')], 1)).toEqual(['C:PREPARE', 'Z:I']);
    const steps = await c.send(
      [q('BEGIN'), bind('p', 'cur', ['1']), serialize.execute({ portal: 'cur', rows: 1 }), sync, execute('cur'), sync, q('COMMIT')],
      4,
    );
    expect(steps).toEqual(['C:BEGIN', 'Z:T', 'bindComplete', ALICE, 'portalSuspended', 'Z:T', BOB, 'C:SELECT 1', 'Z:T', 'C:COMMIT', 'Z:I']);
    c.close();
    expect(await recorded('build-ub-prepare')).toEqual([
      ['PREPARE s AS SELECT email, ssn FROM jit_ub_people ORDER BY id', 'simple', 'allow', 'day-to-day'],
      ['EXECUTE "s"', 'execute', 'allow', 'day-to-day'],
      ['EXECUTE "s"', 'execute', 'allow', 'day-to-day'],
      ['EXECUTE "s"', 'execute', 'allow', 'day-to-day'],
      ['PREPARE p(int) AS SELECT email, ssn FROM jit_ub_people WHERE id >= $1 ORDER BY id', 'simple', 'allow', 'day-to-day'],
      ['BEGIN', 'simple', 'allow', 'day-to-day'],
      ['EXECUTE "p"', 'execute', 'allow', 'day-to-day'],
      ['EXECUTE "p"', 'execute', 'allow', 'day-to-day'],
      ['COMMIT', 'simple', 'allow', 'day-to-day'],
    ]);
  });

  it('a PREPAREd DELETE is held for review at each protocol execution, and a denial deletes nothing', async () => {
    const c = await session('build-ub-held');
    const prepared = nextRequest();
    const prep = c.send([q('PREPARE d AS DELETE FROM jit_ub_held')], 1);
    await t.broker.approvals.decide((await prepared).id, { approve: true, by: 'U1' });
    expect(await prep).toEqual(['C:PREPARE', 'Z:I']);
    expect(await c.send([parse('', 'SELECT 1'), sync], 1)).toEqual(['parseComplete', 'Z:I']);
    const held = nextRequest();
    const out = c.send([bind('d'), execute(), sync], 1);
    const request = await Promise.race([held, out.then((o) => Promise.reject(new Error(`ran without being held: ${o.join(', ')}`)))]);
    expect(request.sql).toBe('EXECUTE "d"');
    expect(request.kinds).toEqual(['destructive']);
    await t.broker.approvals.decide(request.id, { approve: false, by: 'U2' });
    const [bound, refused, ready] = await out;
    expect([bound, ready]).toEqual(['bindComplete', 'Z:I']);
    expect(refused).toMatch(/^E:42501:jit-broker: denied by U2/);
    // The refusal took the place of the Execute without touching the client's unnamed statement.
    expect(await c.send([bind(''), execute(), sync], 1)).toEqual(['bindComplete', 'D:1', 'C:SELECT 1', 'Z:I']);
    c.close();
    expect(await heldCount()).toBe(2);
    expect((await recorded('build-ub-held')).map(([sql, protocol, decision]) => [sql, protocol, decision])).toEqual([
      ['PREPARE d AS DELETE FROM jit_ub_held', 'simple', 'review'],
      ['EXECUTE "d"', 'execute', 'review'],
      ['SELECT 1', 'execute', 'allow'],
    ]);
  });

  it('a statement prepared where the broker could not follow (a function) is unknown at its Bind: held, and denied deletes nothing', async () => {
    const c = await session('build-ub-odd', 'ci:odd');
    const first = nextRequest();
    const call = c.send([q('SELECT jit_ub_prep()')], 1);
    expect((await first).kinds).toContain('unknown'); // EXECUTE of a string in a function: not followed
    await t.broker.approvals.decide((await first).id, { approve: true, by: 'U1' });
    expect(await call).toEqual(['rowDescription', 'D:', 'C:SELECT 1', 'Z:I']);
    const held = nextRequest();
    const out = c.send([bind('x'), execute(), sync], 1);
    const request = await Promise.race([held, out.then((o) => Promise.reject(new Error(`ran without being held: ${o.join(', ')}`)))]);
    expect(request.sql).toBe('EXECUTE "x"');
    expect(request.kinds).toEqual(['unknown']);
    await t.broker.approvals.decide(request.id, { approve: false, by: 'U2' });
    const [bound, refused, ready] = await out;
    expect([bound, ready]).toEqual(['bindComplete', 'Z:I']);
    expect(refused).toMatch(/^E:42501:jit-broker: denied by U2/);
    c.close();
    expect(await heldCount()).toBe(2);
  });

  it("a name never prepared through the broker is refused at the Bind, and the client's unnamed statement is left alone", async () => {
    const c = await session('build-ub-never');
    expect(await c.send([parse('', 'SELECT 1'), sync], 1)).toEqual(['parseComplete', 'Z:I']);
    const [refused, ...rest] = await c.send([bind('nope'), execute(), sync], 1);
    expect(refused).toMatch(/^E:42501:jit-broker: .*no statement nope was prepared in this session through the broker/);
    expect(rest).toEqual(['Z:I']);
    expect(await c.send([bind(''), execute(), sync], 1)).toEqual(['bindComplete', 'D:1', 'C:SELECT 1', 'Z:I']);
    c.close();
    expect((await recorded('build-ub-never')).map(([sql, protocol, decision]) => [sql, protocol, decision])).toEqual([
      ['EXECUTE "nope"', 'parse', 'deny'],
      ['SELECT 1', 'execute', 'allow'],
    ]);
  });

  it('Describe and Close of such a statement reach the server as they are', async () => {
    const c = await session('build-ub-close');
    expect(await c.send([q('PREPARE s2 AS SELECT email FROM jit_ub_people')], 1)).toEqual(['C:PREPARE', 'Z:I']);
    expect(await c.send([serialize.describe({ type: 'S', name: 's2' }), serialize.close({ type: 'S', name: 's2' }), sync], 1)).toEqual([
      'parameterDescription',
      'rowDescription',
      'closeComplete',
      'Z:I',
    ]);
    expect(await c.send([bind('s2'), execute(), sync], 1)).toEqual(['E:26000:prepared statement "s2" does not exist', 'Z:I']);
    c.close();
  });
});

describe('a name SQL changed under the broker', () => {
  it('a Parse name deallocated and prepared again by SQL is bound as what SQL prepared: recorded as such, masked', async () => {
    const c = await session('build-ub-again');
    const plain = "SELECT 'plain'::text AS email, 'plain'::text AS ssn";
    expect(await c.send([parse('n', plain), serialize.describe({ type: 'S', name: 'n' }), sync], 1)).toEqual([
      'parseComplete',
      'parameterDescription',
      'rowDescription',
      'Z:I',
    ]);
    expect(await c.send([bind('n'), execute(), sync], 1)).toEqual(['bindComplete', 'D:plain,plain', 'C:SELECT 1', 'Z:I']);
    // In one write: the Bind is handled before the answers of the DEALLOCATE/PREPARE come back.
    const out = await c.send([q('DEALLOCATE n; PREPARE n AS SELECT email, ssn FROM jit_ub_people ORDER BY id'), bind('n'), execute(), sync], 2);
    expect(out).toEqual(['C:DEALLOCATE', 'C:PREPARE', 'Z:I', 'bindComplete', ALICE, BOB, 'C:SELECT 2', 'Z:I']);
    expect(await c.send([q('DISCARD ALL'), q('PREPARE n AS SELECT ssn, email FROM jit_ub_people WHERE id = 2'), bind('n'), execute(), sync], 3)).toEqual([
      'C:DISCARD ALL',
      'Z:I',
      'C:PREPARE',
      'Z:I',
      'bindComplete',
      'D:****,b***@e***.net',
      'C:SELECT 1',
      'Z:I',
    ]);
    c.close();
    expect((await recorded('build-ub-again')).filter(([, protocol]) => protocol === 'execute').map(([sql]) => sql)).toEqual([
      plain,
      'EXECUTE "n"',
      'EXECUTE "n"',
    ]);
  });

  it('node-postgres: a named query whose name SQL prepared again runs masked, and is recorded as what runs', async () => {
    const build = 'build-ub-node';
    const c = new pg.Client(t.pgConfig(await t.token({ build })));
    await c.connect();
    try {
      const named = { name: 'n', text: "SELECT 'plain'::text AS email" };
      expect((await c.query(named)).rows).toEqual([{ email: 'plain' }]);
      await c.query('DEALLOCATE n; PREPARE n AS SELECT email FROM jit_ub_people WHERE id = 1');
      // node-postgres believes n is its own, and sends Bind/Describe/Execute of it without a Parse.
      expect((await c.query(named)).rows).toEqual([{ email: 'a***@e***.com' }]);
    } finally {
      await c.end();
    }
    expect((await recorded(build)).filter(([, protocol]) => protocol === 'execute').map(([sql]) => sql)).toEqual([
      "SELECT 'plain'::text AS email",
      'EXECUTE "n"',
    ]);
  });

  it('the other way round: SQL EXECUTE of a statement made by a Parse is judged and masked as what the Parse prepared', async () => {
    const c = await session('build-ub-reverse');
    expect(await c.send([parse('n', 'SELECT email, ssn FROM jit_ub_people ORDER BY id'), sync], 1)).toEqual(['parseComplete', 'Z:I']);
    expect(await c.send([q('EXECUTE n')], 1)).toEqual(['rowDescription', ALICE, BOB, 'C:SELECT 2', 'Z:I']);
    expect(await c.send([parse('', 'EXECUTE n'), bind(''), execute(), sync], 1)).toEqual(['parseComplete', 'bindComplete', ALICE, BOB, 'C:SELECT 2', 'Z:I']);
    expect(await c.send([parse('w', 'DELETE FROM jit_ub_held'), sync], 1)).toEqual(['parseComplete', 'Z:I']);
    const held = nextRequest();
    const out = c.send([q('EXECUTE w')], 1);
    const request = await held;
    expect(request.sql).toBe('EXECUTE w');
    await t.broker.approvals.decide(request.id, { approve: false, by: 'U3' });
    expect((await out)[0]).toMatch(/^E:42501:jit-broker: denied by U3/);
    c.close();
    expect(await heldCount()).toBe(2);
    expect((await recorded('build-ub-reverse')).map(([sql, protocol, decision]) => [sql, protocol, decision])).toEqual([
      ['EXECUTE n', 'simple', 'allow'],
      ['EXECUTE n', 'execute', 'allow'],
      ['EXECUTE w', 'simple', 'review'],
    ]);
  });
});

describe('a portal the broker did not bind', () => {
  const REFUSED = /^E:42501:jit-broker: .*did not bind.*FETCH/;

  it('a cursor made with DECLARE: protocol Execute and Describe of it are refused, FETCH is masked', async () => {
    const c = await session('build-ub-declare');
    expect(await c.send([q('BEGIN; DECLARE cur CURSOR FOR SELECT email, ssn FROM jit_ub_people ORDER BY id')], 1)).toEqual([
      'C:BEGIN',
      'C:DECLARE CURSOR',
      'Z:T',
    ]);
    const [refused, ...rest] = await c.send([execute('cur'), sync], 1);
    expect(refused).toMatch(REFUSED);
    expect(rest).toEqual(['Z:E']); // the server's transaction is aborted too
    expect(await c.send([q('ROLLBACK; BEGIN; DECLARE cur CURSOR FOR SELECT email, ssn FROM jit_ub_people ORDER BY id')], 1)).toEqual([
      'C:ROLLBACK',
      'C:BEGIN',
      'C:DECLARE CURSOR',
      'Z:T',
    ]);
    const [undescribed, ...after] = await c.send([describeP('cur'), sync], 1);
    expect(undescribed).toMatch(/^E:42501:jit-broker: .*did not bind/);
    expect(after).toEqual(['Z:E']);
    const fetched = await c.send(
      [q('ROLLBACK; BEGIN; DECLARE cur CURSOR FOR SELECT email, ssn FROM jit_ub_people ORDER BY id; FETCH ALL FROM cur; COMMIT')],
      1,
    );
    expect(fetched).toEqual(['C:ROLLBACK', 'C:BEGIN', 'C:DECLARE CURSOR', 'rowDescription', ALICE, BOB, 'C:FETCH 2', 'C:COMMIT', 'Z:I']);
    c.close();
    // What ran is recorded; the refused Execute and Describe ran nothing.
    expect((await recorded('build-ub-declare')).map(([sql, protocol]) => [sql, protocol])).toEqual([
      ['BEGIN; DECLARE cur CURSOR FOR SELECT email, ssn FROM jit_ub_people ORDER BY id', 'simple'],
      ['ROLLBACK; BEGIN; DECLARE cur CURSOR FOR SELECT email, ssn FROM jit_ub_people ORDER BY id', 'simple'],
      ['ROLLBACK; BEGIN; DECLARE cur CURSOR FOR SELECT email, ssn FROM jit_ub_people ORDER BY id; FETCH ALL FROM cur; COMMIT', 'simple'],
    ]);
  });

  it('a cursor a function opened (refcursor): protocol Execute of it is refused, FETCH is masked', async () => {
    const c = await session('build-ub-refcursor');
    expect(await c.send([q("BEGIN; SELECT jit_ub_open('rc')")], 1)).toEqual(['C:BEGIN', 'rowDescription', 'D:rc', 'C:SELECT 1', 'Z:T']);
    const out = await c.send([serialize.execute({ portal: 'rc', rows: 1 }), sync], 1);
    expect(out[0]).toMatch(REFUSED);
    expect(noRaw(out)).toEqual([]);
    expect(await c.send([q("ROLLBACK; BEGIN; SELECT jit_ub_open('rc'); FETCH ALL FROM rc; COMMIT")], 1)).toEqual([
      'C:ROLLBACK',
      'C:BEGIN',
      'rowDescription',
      'D:rc',
      'C:SELECT 1',
      'rowDescription',
      ALICE,
      BOB,
      'C:FETCH 2',
      'C:COMMIT',
      'Z:I',
    ]);
    c.close();
  });

  it('a portal the broker bound is gone with its transaction: a cursor DECLAREd under its name later is refused', async () => {
    const c = await session('build-ub-gone');
    const plain = "SELECT 'plain'::text AS email, 'plain'::text AS ssn";
    // All in one write: the Execute is handled before the Sync that ended the portal's transaction is answered.
    const out = await c.send(
      [
        parse('x', plain),
        bind('x', 'p'),
        execute('p'),
        sync,
        q('DECLARE p CURSOR WITH HOLD FOR SELECT email, ssn FROM jit_ub_people ORDER BY id'),
        execute('p'),
        sync,
        q('CLOSE p'),
      ],
      4,
    );
    expect(out.slice(0, 8)).toEqual(['parseComplete', 'bindComplete', 'D:plain,plain', 'C:SELECT 1', 'Z:I', 'C:DECLARE CURSOR', 'Z:I', out[7]]);
    expect(out[7]).toMatch(REFUSED);
    expect(out.slice(8)).toEqual(['Z:I', 'C:CLOSE CURSOR', 'Z:I']);
    c.close();
  });

  it('a portal replaced by a cursor of its name within one Sync group runs masked by what it really returns', async () => {
    const c = await session('build-ub-replaced');
    const plain = "SELECT 'plain'::text AS email, 'plain'::text AS ssn";
    expect(await c.send([q('BEGIN')], 1)).toEqual(['C:BEGIN', 'Z:T']);
    const out = await c.send(
      [
        parse('x', plain),
        bind('x', 'p'),
        serialize.describe({ type: 'P', name: 'p' }),
        parse('', 'CLOSE p'),
        bind(''),
        execute(),
        parse('', 'DECLARE p CURSOR FOR SELECT email, ssn FROM jit_ub_people ORDER BY id'),
        bind(''),
        execute(),
        execute('p'),
        sync,
      ],
      1,
    );
    expect(noRaw(out)).toEqual([]);
    expect(out.filter((m) => m.startsWith('D:'))).toEqual([ALICE, BOB]);
    expect(await c.send([q('COMMIT')], 1)).toEqual(['C:COMMIT', 'Z:I']);
    c.close();
  });
});

describe('pipelined, while admission is slow', () => {
  it('SQL PREPARE, protocol Bind/Execute of it, a refused cursor Execute and DEALLOCATE, 30 times in one connection', async () => {
    const c = await session('build-ub-slow');
    const waits = [() => sleep(3), () => new Promise<void>((r) => setImmediate(r))];
    let n = 0;
    const batch = [
      q('PREPARE s AS SELECT email, ssn FROM jit_ub_people ORDER BY id'),
      bind('s'),
      execute(),
      sync,
      q('BEGIN; DECLARE cur CURSOR FOR SELECT email FROM jit_ub_people'),
      execute('cur'),
      sync,
      q('ROLLBACK; DEALLOCATE s'),
    ];
    try {
      for (let i = 0; i < 30; i++) {
        const restore = i % 2 ? slowAdmission(t, () => waits[n++ % waits.length]!()) : null;
        try {
          const out = await c.send(batch, 5);
          expect({ i, out: out.map((m) => (m.startsWith('E:42501') ? 'refused' : m)) }).toEqual({
            i,
            out: [
              'C:PREPARE',
              'Z:I',
              'bindComplete',
              ALICE,
              BOB,
              'C:SELECT 2',
              'Z:I',
              'C:BEGIN',
              'C:DECLARE CURSOR',
              'Z:T',
              'refused',
              'Z:E',
              'C:ROLLBACK',
              'C:DEALLOCATE',
              'Z:I',
            ],
          });
        } finally {
          restore?.();
        }
      }
    } finally {
      c.close();
    }
    const rec = await recorded('build-ub-slow');
    expect(rec.filter(([sql]) => sql === 'EXECUTE "s"')).toHaveLength(30);
    expect(rec.filter(([, protocol]) => protocol === 'execute')).toHaveLength(30);
  });
});
