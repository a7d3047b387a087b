// The built-in demo target: embedded PostgreSQL (PGlite) over TCP, seeded with fake customers and orders.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import pg from 'pg';
import { parse, serialize } from 'pg-protocol';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_CUSTOMERS, startDemoDatabase, type DemoDatabase } from '../../broker/demo/database.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return sum % 10 === 0;
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** A bare protocol connection, for what node-postgres cannot do on its own (COPY FROM STDIN, half-sent batches). */
async function rawConnect(url: string) {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.on('error', () => undefined);
  const messages: BackendMessage[] = [];
  void parse(socket, (m) => messages.push(m));
  const waitFor = async (pred: (m: BackendMessage[]) => boolean, what: string) => {
    for (let i = 0; i < 500; i++) {
      if (pred(messages)) return messages;
      await sleep(10);
    }
    throw new Error(`timed out waiting for ${what}; got ${messages.map((m) => m.name).join(',')}`);
  };
  const readyCount = () => messages.filter((m) => m.name === 'readyForQuery').length;
  socket.write(serialize.startup({ user: 'postgres', database: 'postgres' }));
  await waitFor(() => readyCount() === 1, 'startup');
  return { socket, messages, waitFor, readyCount };
}

const copyData = (text: string) => {
  const body = Buffer.from(text);
  const head = Buffer.alloc(5);
  head[0] = 0x64; // 'd'
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
};
const copyDone = () => Buffer.from([0x63, 0, 0, 0, 4]); // 'c'

describe('demo database (in memory)', () => {
  let demo: DemoDatabase;

  beforeAll(async () => {
    demo = await startDemoDatabase({ dataDir: null, port: 0 });
  });
  afterAll(async () => {
    await demo?.close();
  });

  it('listens on an ephemeral loopback port and gives a node-postgres URL', () => {
    expect(demo.url).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
    expect(Number(new URL(demo.url).port)).toBeGreaterThan(0);
  });

  it('is seeded with fake customers and their orders', async () => {
    await withClient(demo.url, async (c) => {
      const customers = await c.query<{ id: number; name: string; email: string; card_number: string; phone: string; created_at: Date }>(
        'SELECT id, name, email, card_number, phone, created_at FROM customers ORDER BY id',
      );
      expect(customers.rows).toHaveLength(20);
      expect(customers.rows.map((r) => r.id)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      for (const r of customers.rows) {
        expect(r.email).toMatch(/^[a-z]+\.[a-z]+@example\.com$/);
        expect(r.card_number).toMatch(/^\d{14,16}$/);
        expect(luhn(r.card_number)).toBe(true);
        expect(r.phone).toMatch(/^\+1-202-555-01\d\d$/);
        expect(r.created_at).toBeInstanceOf(Date);
      }
      expect(customers.rows[0]).toMatchObject({ name: 'Ava Thompson', email: 'ava.thompson@example.com', card_number: '4111111111111111' });
      expect(customers.rows.find((r) => r.id === 11)?.name).toBe('Chloé Dubois');

      const orders = await c.query<{ n: string; customers: string; orphans: string; min: string; max: string }>(
        `SELECT count(*) AS n, count(DISTINCT customer_id) AS customers, min(amount) AS min, max(amount) AS max,
                count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id)) AS orphans
           FROM orders o`,
      );
      expect(orders.rows[0]).toMatchObject({ n: '40', customers: '20', orphans: '0' });
      expect(Number(orders.rows[0]!.min)).toBeGreaterThanOrEqual(5);
      expect(Number(orders.rows[0]!.max)).toBeLessThanOrEqual(500);
    });
  });

  it('runs parameterized queries (extended protocol)', async () => {
    await withClient(demo.url, async (c) => {
      const one = await c.query('SELECT id, name FROM customers WHERE email = $1', ['priya.raman@example.com']);
      expect(one.rows).toEqual([{ id: 9, name: 'Priya Raman' }]);
      const big = await c.query<{ n: string }>('SELECT count(*) AS n FROM orders WHERE amount > $1 AND customer_id = ANY($2::int[])', [0, [1, 2, 3]]);
      expect(big.rows[0]!.n).toBe('6');
      const named = await c.query({ name: 'by-id', text: 'SELECT email FROM customers WHERE id = $1', values: [4] });
      expect(named.rows[0]).toEqual({ email: 'noah.fischer@example.com' });
      await expect(c.query('SELECT * FROM no_such_table WHERE id = $1', [1])).rejects.toThrow(/no_such_table/);
      expect((await c.query('SELECT $1::text AS back', ['still fine'])).rows[0]).toEqual({ back: 'still fine' });
    });
  });

  it('runs transactions: rollback discards, commit keeps', async () => {
    await withClient(demo.url, async (c) => {
      await c.query('BEGIN');
      await c.query('INSERT INTO orders (customer_id, amount) VALUES ($1, $2)', [1, '999.99']);
      expect((await c.query('SELECT count(*)::int AS n FROM orders WHERE amount = 999.99')).rows[0]).toEqual({ n: 1 });
      await c.query('ROLLBACK');
      expect((await c.query('SELECT count(*)::int AS n FROM orders WHERE amount = 999.99')).rows[0]).toEqual({ n: 0 });

      await c.query('BEGIN');
      const ins = await c.query<{ id: number }>('INSERT INTO orders (customer_id, amount) VALUES ($1, $2) RETURNING id', [2, '12.34']);
      await c.query('COMMIT');
      expect(ins.rows[0]!.id).toBeGreaterThan(40); // the sequence continues after the seeded rows
    });
    await withClient(demo.url, async (c) => {
      expect((await c.query('SELECT customer_id, amount FROM orders WHERE id > 40')).rows).toEqual([{ customer_id: 2, amount: '12.34' }]);
      await c.query('DELETE FROM orders WHERE id > 40');
    });
  });

  it('serves concurrent connections, each getting its own results', async () => {
    const clients = await Promise.all(
      [0, 1, 2, 3].map(async () => {
        const c = new pg.Client({ connectionString: demo.url });
        await c.connect();
        return c;
      }),
    );
    try {
      // Interleaved extended-protocol batches: with pglite-socket's stock queue these cross over between connections.
      await Promise.all(
        clients.map(async (c, k) => {
          for (let i = 0; i < 50; i++) {
            const r = await c.query<{ k: number; i: number; tag: string }>(`SELECT $1::int AS k, $2::int AS i, 'c${k}' AS tag`, [k, i]);
            expect(r.rows).toEqual([{ k, i, tag: `c${k}` }]);
          }
        }),
      );
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it("keeps each connection's named prepared statements apart", async () => {
    const a = new pg.Client({ connectionString: demo.url });
    const b = new pg.Client({ connectionString: demo.url });
    await a.connect();
    await b.connect();
    try {
      // Same statement name, different SQL, in two connections at once: a real server keeps them apart too.
      const qa = () => a.query({ name: 'lookup', text: 'SELECT name AS v FROM customers WHERE id = $1', values: [1] });
      const qb = () => b.query({ name: 'lookup', text: 'SELECT email AS v FROM customers WHERE id = $1', values: [1] });
      for (let i = 0; i < 10; i++) {
        const [ra, rb] = await Promise.all([qa(), qb()]);
        expect(ra.rows).toEqual([{ v: 'Ava Thompson' }]);
        expect(rb.rows).toEqual([{ v: 'ava.thompson@example.com' }]);
      }
    } finally {
      await a.end();
    }
    try {
      // a has gone: its statement is closed, b's is still there
      const left = await b.query<{ name: string }>('SELECT name FROM pg_prepared_statements ORDER BY name');
      expect(left.rows).toHaveLength(1);
      expect(left.rows[0]!.name).toMatch(/:lookup$/);
      expect((await b.query({ name: 'lookup', text: 'SELECT email AS v FROM customers WHERE id = $1', values: [2] })).rows).toEqual([
        { v: 'liam.okafor@example.com' },
      ]);
    } finally {
      await b.end();
    }
  });

  it('serialises transactions: a second connection waits while the first holds one open', async () => {
    const a = new pg.Client({ connectionString: demo.url });
    const b = new pg.Client({ connectionString: demo.url });
    await a.connect();
    await b.connect();
    try {
      await a.query('BEGIN');
      await a.query("INSERT INTO customers (name, email, card_number, phone) VALUES ('Tx Test', 'tx.test@example.com', '4111111111111111', '+1-202-555-0199')");
      let bDone = false;
      const bQuery = b.query<{ n: number }>('SELECT count(*)::int AS n FROM customers WHERE email = $1', ['tx.test@example.com']).then((r) => {
        bDone = true;
        return r;
      });
      await sleep(300);
      expect(bDone).toBe(false); // b is queued behind a's open transaction, not answered from inside it
      await a.query('COMMIT');
      expect((await bQuery).rows[0]).toEqual({ n: 1 }); // and then sees the committed row
      await b.query("DELETE FROM customers WHERE email = 'tx.test@example.com'");
    } finally {
      await a.end();
      await b.end();
    }
  });

  it('rolls back the transaction of a connection that disconnects, and lets the others go on', async () => {
    const a = new pg.Client({ connectionString: demo.url });
    await a.connect();
    a.on('error', () => undefined);
    await a.query('BEGIN');
    await a.query('INSERT INTO orders (customer_id, amount) VALUES (3, 777.77)');
    (a as unknown as { connection: { stream: net.Socket } }).connection.stream.destroy();
    await withClient(demo.url, async (b) => {
      expect((await b.query('SELECT count(*)::int AS n FROM orders WHERE amount = 777.77')).rows[0]).toEqual({ n: 0 });
    });
  });

  it('recovers from a connection that leaves in the middle of a failed extended-protocol batch', async () => {
    const raw = await rawConnect(demo.url);
    raw.socket.write(Buffer.concat([serialize.parse({ text: 'SELEC broken' }), serialize.flush()]));
    await raw.waitFor((m) => m.some((x) => x.name === 'error'), 'parse error');
    raw.socket.destroy();
    await withClient(demo.url, async (c) => {
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    });
  });

  it('resets session state once the last connection has gone', async () => {
    let initial: unknown;
    await withClient(demo.url, async (c) => {
      initial = (await c.query('SHOW search_path')).rows[0];
      await c.query('SET search_path = nowhere');
      await c.query('PREPARE leftover AS SELECT 1');
    });
    await withClient(demo.url, async (c) => {
      expect((await c.query('SHOW search_path')).rows[0]).toEqual(initial);
      expect((await c.query('SELECT count(*)::int AS n FROM pg_prepared_statements')).rows[0]).toEqual({ n: 0 });
    });
  });

  it('accepts COPY FROM STDIN (emulated: the data is buffered, then run in one go) and COPY TO STDOUT', async () => {
    await withClient(demo.url, (c) => c.query('CREATE TABLE copy_target (id int, note text)'));
    const raw = await rawConnect(demo.url);
    raw.socket.write(serialize.query('COPY copy_target FROM STDIN WITH (FORMAT csv)'));
    await raw.waitFor((m) => m.some((x) => x.name === 'copyInResponse'), 'CopyInResponse');
    raw.socket.write(copyData('1,one\n2,two\n'));
    raw.socket.write(copyData('3,"three, with comma"\n'));
    raw.socket.write(copyDone());
    await raw.waitFor(() => raw.readyCount() === 2, 'end of COPY');
    const tail = raw.messages.slice(-2);
    expect(tail.map((m) => m.name)).toEqual(['commandComplete', 'readyForQuery']);
    expect((tail[0] as BackendMessage & { text: string }).text).toBe('COPY 3');
    expect(raw.messages.filter((m) => m.name === 'copyInResponse')).toHaveLength(1);

    // Bad data: the error comes back after CopyDone and the database stays up.
    raw.socket.write(serialize.query('COPY copy_target FROM STDIN'));
    await raw.waitFor((m) => m.filter((x) => x.name === 'copyInResponse').length === 2, 'second CopyInResponse');
    raw.socket.write(Buffer.concat([copyData('not-a-number\tx\n'), copyDone()]));
    await raw.waitFor(() => raw.readyCount() === 3, 'end of failed COPY');
    const errors = raw.messages.filter((m) => m.name === 'error').map((m) => (m as unknown as Error).message);
    expect(errors).toEqual([expect.stringMatching(/invalid input syntax for type integer/)]);
    raw.socket.end();

    await withClient(demo.url, async (c) => {
      expect((await c.query('SELECT id, note FROM copy_target ORDER BY id')).rows).toEqual([
        { id: 1, note: 'one' },
        { id: 2, note: 'two' },
        { id: 3, note: 'three, with comma' },
      ]);
      // node-postgres without a copy stream answers CopyInResponse with CopyFail: that is an error, not a crash.
      await expect(c.query('COPY copy_target FROM STDIN')).rejects.toThrow(/COPY from stdin failed/);
      // Not as the first statement of a simple query, or over the extended protocol (a named statement): refused
      // with an error instead of being run (the stock pglite-socket backend would exit, for every connection).
      await expect(c.query('SELECT 1; COPY copy_target FROM STDIN')).rejects.toThrow(/cannot run this COPY/);
      await expect(c.query({ name: 'copy-in', text: 'COPY copy_target FROM STDIN' })).rejects.toThrow(/cannot run this COPY/);
      expect((await c.query('SELECT count(*)::int AS n FROM copy_target')).rows[0]).toEqual({ n: 3 });
      await c.query('DROP TABLE copy_target');
    });

    const out = await rawConnect(demo.url);
    out.socket.write(serialize.query('COPY (SELECT id, name FROM customers WHERE id <= 2 ORDER BY id) TO STDOUT'));
    await out.waitFor(() => out.readyCount() === 2, 'COPY TO STDOUT');
    const rows = out.messages.filter((m) => m.name === 'copyData').map((m) => Buffer.from((m as BackendMessage & { chunk: Buffer }).chunk).toString());
    expect(rows).toEqual(['1\tAva Thompson\n', '2\tLiam Okafor\n']);
    out.socket.end();
  });

  it('closes CancelRequest connections (a cancel cannot stop a query, but must not hang the client)', async () => {
    const { hostname, port } = new URL(demo.url);
    const socket = net.connect(Number(port), hostname);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const cancel = Buffer.alloc(16);
    cancel.writeInt32BE(16, 0);
    cancel.writeInt32BE(80877102, 4);
    cancel.writeInt32BE(42, 8);
    cancel.writeInt32BE(1234, 12);
    socket.write(cancel);
    await Promise.race([closed, sleep(2000).then(() => Promise.reject(new Error('cancel connection left open')))]);
    await withClient(demo.url, async (c) => {
      expect((await c.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
    });
  });

  it('ignores the user and database asked for: everyone is postgres on postgres', async () => {
    const url = new URL(demo.url);
    url.username = 'someone';
    url.pathname = '/elsewhere';
    await withClient(url.toString(), async (c) => {
      expect((await c.query('SELECT current_user AS u, current_database() AS d')).rows[0]).toEqual({ u: 'postgres', d: 'postgres' });
    });
  });
});

describe('demo database (on disk)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'jit-demo-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('persists under dataDir and seeds only on first start', async () => {
    const dataDir = join(dir, 'demo');
    const first = await startDemoDatabase({ dataDir, port: 0 });
    try {
      await withClient(first.url, async (c) => {
        expect((await c.query('SELECT count(*)::int AS n FROM customers')).rows[0]).toEqual({ n: DEMO_CUSTOMERS.length });
        await c.query('DELETE FROM orders WHERE customer_id = 20');
        await c.query('DELETE FROM customers WHERE id = 20');
        await c.query(
          "INSERT INTO customers (name, email, card_number, phone) VALUES ('Kept Row', 'kept.row@example.com', '4242424242424242', '+1-202-555-0198')",
        );
      });
    } finally {
      await first.close();
    }
    const second = await startDemoDatabase({ dataDir, port: 0 });
    try {
      await withClient(second.url, async (c) => {
        const r = await c.query<{ n: number; kept: number; gone: number }>(
          `SELECT count(*)::int AS n, count(*) FILTER (WHERE email = 'kept.row@example.com')::int AS kept,
                  count(*) FILTER (WHERE id = 20)::int AS gone FROM customers`,
        );
        expect(r.rows[0]).toEqual({ n: 20, kept: 1, gone: 0 });
      });
    } finally {
      await second.close();
    }
  });
});
