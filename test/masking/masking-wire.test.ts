// Masking as real clients see it, through a real broker against the real PostgreSQL: psql (simple protocol,
// cursors), node-postgres (extended protocol, text and binary results), postgres.js, a raw pipeline.
import pg from 'pg';
import postgres from 'postgres';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { dataRows, MASKED, MASKING_CONFIG, PII, pipeline, psqlRows, setup, teardown } from '../support/masking.js';

let t: TestBroker;
let token: string;
beforeAll(async () => {
  await setup();
  t = await startTestBroker(MASKING_CONFIG);
  token = await t.token({ build: 'build-mask-wire' });
});
afterAll(async () => {
  await t?.stop();
  await teardown();
});

const HASH = /^[0-9a-f]{16}$/;
const noPII = (out: string) => PII.filter((p) => out.includes(p));

describe('maskers, through psql', () => {
  it('email, partial keep_last, redact, hash and null, each by its column rule', async () => {
    const { rows, r } = await psqlRows(t, token, 'SELECT email, card_number, ssn, phone, secret_note, name FROM jit_customers ORDER BY id');
    expect(r.stderr).toBe('');
    expect(rows.map((x) => x[0])).toEqual(MASKED.email);
    expect(rows.map((x) => x[1])).toEqual(MASKED.card);
    expect(rows.map((x) => x[2])).toEqual(['****', '****', '****']);
    for (const x of rows) expect(x[3]).toMatch(HASH);
    expect(rows[0]![3]).toBe(rows[2]![3]); // equal phone numbers, equal hashes: joins still line up
    expect(rows[0]![3]).not.toBe(rows[1]![3]);
    expect(rows.map((x) => x[4])).toEqual(['', '', '']); // NULL (psql prints nothing)
    expect(rows.map((x) => x[5])).toEqual(['Alice Martin', 'Bob Stone', 'Carol Diaz']); // no rule for this session
  });

  it('the hash is the same in another session, and equal inputs give equal outputs', async () => {
    const a = await psqlRows(t, token, 'SELECT phone FROM jit_customers ORDER BY id');
    const b = await psqlRows(t, await t.token({ build: 'build-mask-wire-2' }), "SELECT phone FROM jit_customers WHERE phone = '+1 415 555 0100'");
    expect(b.rows.map((x) => x[0])).toEqual([a.rows[0]![0], a.rows[0]![0]]);
  });

  it('follows the column through aliases, c.*, subqueries, CTEs, RETURNING, views, views of views and partitions', async () => {
    const cases: [string, string[]][] = [
      ['SELECT email AS e FROM jit_customers c WHERE id = 1', ['a***@e***.com']],
      ['SELECT c.* FROM jit_customers c WHERE id = 2', ['2', 'Bob Stone', 'b***@e***.net', '****-****-****-0004', '****']],
      ['SELECT * FROM (SELECT email FROM jit_customers WHERE id = 3) s', ['c***@e***.org']],
      ['WITH x AS (SELECT email AS mail FROM jit_customers) SELECT mail FROM x ORDER BY 1 LIMIT 1', ['a***@e***.com']],
      ['UPDATE jit_customers SET id = id WHERE id = 1 RETURNING email', ['a***@e***.com']],
      ['SELECT contact, shout FROM jit_customer_contacts WHERE id = 1', ['a***@e***.com', 'ALICE MARTIN']],
      ['SELECT contact FROM jit_contact_emails WHERE id = 2', ['b***@e***.net']],
      ['SELECT note FROM jit_events_2024', ['****']], // the rule names the partitioned parent
      ['SELECT note FROM jit_events', ['****']],
      ['SELECT email::text FROM jit_customers WHERE id = 1', ['a***@e***.com']], // a no-op cast keeps the origin
    ];
    for (const [sql, want] of cases) {
      const { rows, r } = await psqlRows(t, token, sql);
      expect(r.stderr, sql).toBe('');
      expect(rows[0]?.slice(0, want.length), sql).toEqual(want);
    }
  });

  it('detectors mask values whose origin is lost: expressions, casts, JSON, arrays, records, bytea, set operations', async () => {
    const cases: [string, string][] = [
      ['SELECT lower(email) FROM jit_customers WHERE id = 1', '****'],
      ["SELECT 'mail: ' || email || '.' FROM jit_customers WHERE id = 1", 'mail: ****.'],
      ["SELECT format('%s', email) FROM jit_customers WHERE id = 2", '****'],
      ['SELECT card_number::varchar(30) FROM jit_customers WHERE id = 1', '****'],
      ['SELECT array_agg(email ORDER BY id) FROM jit_customers', '{****,****,****}'],
      ['SELECT email FROM jit_customers WHERE id = 1 UNION SELECT $$x$$ ORDER BY 1 LIMIT 1', '****'],
      ['SELECT (SELECT ssn FROM jit_customers WHERE id = 2)', '****'],
      ['SELECT email::bytea FROM jit_customers WHERE id = 3', `\\x${Buffer.from('****').toString('hex')}`],
      ['SELECT contact_email FROM jit_customers WHERE id = 1', '****'], // no column rule: the detector
    ];
    for (const [sql, want] of cases) {
      const { rows, r } = await psqlRows(t, token, sql);
      expect(r.stderr, sql).toBe('');
      expect(rows[0]?.[0], sql).toBe(want);
    }
    const json = await psqlRows(t, token, 'SELECT row_to_json(c), profile, c::text FROM jit_customers c ORDER BY id');
    const out = json.r.stdout;
    expect(noPII(out)).toEqual([]);
    expect(JSON.parse(json.rows[0]![0]!)).toMatchObject({ id: 1, name: 'Alice Martin', email: '****', ssn: '****', phone: '****' });
    // A card number outside a JSON string becomes a JSON string: the document stays valid.
    expect(JSON.parse(json.rows[0]![1]!)).toEqual({ backup_email: '****', card: '****' });
    expect(json.rows[0]![2]).toContain('Alice Martin');
  });

  it('a whole-row value of a table with masked columns is NULL', async () => {
    const { rows } = await psqlRows(t, token, 'SELECT c, id FROM jit_customers c WHERE id = 1');
    expect(rows).toEqual([['', '1']]);
  });

  it('cursors: DECLARE / FETCH in a transaction, and psql FETCH_COUNT', async () => {
    const sql = 'BEGIN; DECLARE cur CURSOR FOR SELECT email, ssn FROM jit_customers ORDER BY id; FETCH 2 FROM cur; FETCH ALL FROM cur; COMMIT';
    const { rows, r } = await psqlRows(t, token, sql);
    expect(r.stderr).toBe('');
    expect(rows.filter((x) => x.length === 2)).toEqual(MASKED.email.map((e) => [e, '****']));
    const fc = await psqlRows(t, token, 'SELECT email FROM jit_customers ORDER BY id', ['-v', 'FETCH_COUNT=1']);
    expect(fc.rows.map((x) => x[0])).toEqual(MASKED.email);
  });
});

describe('node-postgres', () => {
  it('extended protocol with a named statement executed again and again, text results', async () => {
    const c = new pg.Client(t.pgConfig(token));
    await c.connect();
    try {
      for (const id of [1, 2, 1]) {
        const r = await c.query({ name: 'by-id', text: 'SELECT email, card_number, phone FROM jit_customers WHERE id = $1', values: [id] });
        expect(r.rows[0].email).toBe(MASKED.email[id - 1]);
        expect(r.rows[0].card_number).toBe(MASKED.card[id - 1]);
        expect(r.rows[0].phone).toMatch(HASH);
      }
    } finally {
      await c.end();
    }
  });

  it('binary results (binary: true): text types masked as text, json/jsonb/arrays/records walked, the rest NULL', async () => {
    // node-postgres has a `binary` option (binary result format for every extended query); @types/pg does not declare it.
    const c = new pg.Client(t.pgConfig(token, { binary: true } as unknown as Partial<pg.ClientConfig>));
    const text = new pg.Client(t.pgConfig(token));
    await Promise.all([c.connect(), text.connect()]);
    try {
      // node-postgres asks for binary results only in the extended protocol, i.e. with parameters.
      const sql =
        'SELECT id, email, card_number, ssn, phone, secret_note, contact_email, array_agg(email) OVER () AS all_emails FROM jit_customers WHERE id > $1 ORDER BY id';
      const [b, x] = [await c.query(sql, [0]), await text.query(sql, [0])];
      expect(b.fields.every((f) => f.format === 'binary')).toBe(true);
      expect(b.rows.map((r: { email: string }) => r.email)).toEqual(MASKED.email);
      expect(b.rows.map((r: { card_number: string }) => r.card_number)).toEqual(MASKED.card);
      expect(b.rows[0]).toMatchObject({ id: 1, ssn: '****', secret_note: null, contact_email: '****' });
      expect(b.rows.map((r: { phone: string }) => r.phone)).toEqual(x.rows.map((r: { phone: string }) => r.phone)); // same hash either way
      expect(b.rows[0].all_emails).toEqual(['****', '****', '****']);
      const j = await c.query('SELECT profile, row_to_json(jit_customers) AS doc, row(name, ssn) AS rec FROM jit_customers WHERE id = $1', [1]);
      expect(noPII(JSON.stringify(j.rows[0]))).toEqual([]);
      // A binary record the client does not decode: still no PII in its bytes.
      expect(noPII(String(j.rows[0].rec))).toEqual([]);
    } finally {
      await Promise.all([c.end(), text.end()]);
    }
  });

  it('a binary cursor (DECLARE … BINARY CURSOR) is masked like any binary result', async () => {
    const c = new pg.Client(t.pgConfig(token));
    await c.connect();
    try {
      await c.query('BEGIN');
      await c.query('DECLARE bc BINARY CURSOR FOR SELECT email, ssn FROM jit_customers ORDER BY id');
      const r = await c.query('FETCH ALL FROM bc');
      expect(r.fields[0]!.format).toBe('binary');
      expect(r.rows.map((x: { email: Buffer | string }) => String(x.email))).toEqual(MASKED.email);
      await c.query('COMMIT');
    } finally {
      await c.end();
    }
  });
});

describe('postgres.js', () => {
  it('prepared statements (its default) and unsafe simple queries are masked', async () => {
    const sql = postgres({ host: t.host, port: t.port, database: 'app', username: 'ci', password: token, ssl: { rejectUnauthorized: false }, max: 1 });
    try {
      for (const id of [1, 2, 3]) {
        const [row] = await sql`SELECT email, card_number, ssn FROM jit_customers WHERE id = ${id}`;
        expect(row).toEqual({ email: MASKED.email[id - 1], card_number: MASKED.card[id - 1], ssn: '****' });
      }
      const rows = await sql.unsafe('SELECT lower(email) AS l, contact FROM jit_customers JOIN jit_customer_contacts USING (id) ORDER BY id');
      expect(rows.map((r) => [r.l, r.contact])).toEqual(MASKED.email.map((e) => ['****', e]));
    } finally {
      await sql.end();
    }
  });
});

describe('raw extended protocol', () => {
  it('an Execute the client never described is still masked (the broker describes the portal itself)', async () => {
    const out = await pipeline(t, token, [
      serialize.parse({ name: 'nd', text: 'SELECT email, ssn FROM jit_customers WHERE id = $1' }),
      serialize.bind({ statement: 'nd', values: ['1'] }),
      serialize.execute(),
      serialize.bind({ statement: 'nd', values: ['2'], binary: true }),
      serialize.execute(),
      serialize.sync(),
    ]);
    // The broker's own Describe is answered to the broker: the client sees exactly what it asked for.
    expect(out.map((m) => m.name)).toEqual([
      'parseComplete',
      'bindComplete',
      'dataRow',
      'commandComplete',
      'bindComplete',
      'dataRow',
      'commandComplete',
      'readyForQuery',
    ]);
    expect(dataRows(out)).toEqual([
      ['a***@e***.com', '****'],
      ['b***@e***.net', '****'],
    ]);
  });
});
