// What the relays write, as a client on the wire sees it (writer.ts): a turn's answers leave the broker in one
// write, so over TLS a pipelined batch's answers, rewritten (masked) rows and refusals among them arrive as one
// TLS record, not one per piece; an error keeps its place among the answers; and a client that does not read
// still stops the server (backpressure), whatever is coalesced.
import net from 'node:net';
import tls from 'node:tls';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { direct, eventually, startTestBroker, type TestBroker } from '../support/broker.js';
import { directMy, startMysqlBroker, type MysqlTestBroker } from '../support/mysql.js';
import { openPipeline, sync } from '../support/pg-pipeline.js';

const ROWS = 40;
const MASKING = `
rules:
  - { id: day-to-day, kinds: [read, write], action: allow }
default: deny
masking:
  rules:
    - { columns: ["*.email"], with: email }
`;

/**
 * A TCP relay in front of a listener that counts the TLS records (of application data, type 23) the broker sends:
 * the bytes are forwarded untouched, and their record headers are read on the way, after the protocol's plaintext
 * prefix (`prefix`: its length, from the broker's first bytes: PostgreSQL's 'S', MySQL's greeting packet).
 */
interface RecordCounter {
  port: number;
  /** Application-data records from the broker so far. */
  records(): number;
  close(): Promise<void>;
}

async function countRecords(port: number, prefix: (first: Buffer) => number): Promise<RecordCounter> {
  let records = 0;
  const conns = new Set<net.Socket>();
  const server = net.createServer((c) => {
    const up = net.connect(port, '127.0.0.1');
    conns.add(c).add(up);
    let header = Buffer.alloc(0);
    let skip = -1;
    up.on('data', (d: Buffer) => {
      if (skip < 0) skip = prefix(d);
      c.write(d);
      let i = 0;
      while (i < d.length) {
        if (skip > 0) {
          const k = Math.min(skip, d.length - i);
          skip -= k;
          i += k;
          continue;
        }
        const k = Math.min(5 - header.length, d.length - i);
        header = Buffer.concat([header, d.subarray(i, i + k)]);
        i += k;
        if (header.length < 5) break;
        if (header[0] === 23) records++;
        skip = header.readUInt16BE(3);
        header = Buffer.alloc(0);
      }
    });
    c.pipe(up);
    const end = () => (c.destroy(), up.destroy());
    c.on('close', end).on('error', end);
    up.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    records: () => records,
    close: () => {
      for (const s of conns) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('postgres', () => {
  let t: TestBroker;
  let counter: RecordCounter;
  beforeAll(async () => {
    t = await startTestBroker(MASKING);
    counter = await countRecords(t.port, () => 1);
    await direct((c) =>
      c.query(`DROP TABLE IF EXISTS jit_t_wire; CREATE TABLE jit_t_wire (id int, email text);
        INSERT INTO jit_t_wire SELECT i, 'user' || i || '@example.com' FROM generate_series(1, ${ROWS}) i`),
    );
  });
  afterAll(async () => {
    await counter?.close();
    await t?.stop();
    await direct((c) => c.query('DROP TABLE IF EXISTS jit_t_wire'));
  });

  it('answers a pipelined batch (masked rows, a refusal in its place) in one TLS record', async () => {
    const c = await openPipeline({ ...t, port: counter.port }, await t.token());
    try {
      const before = counter.records();
      const batch = [
        serialize.parse({ text: 'SELECT id, email FROM jit_t_wire ORDER BY id' }),
        serialize.bind(),
        serialize.describe({ type: 'P' }),
        serialize.execute(),
        sync,
        serialize.query('DROP TABLE jit_t_wire'), // refused (default deny): its error answers it, after the rows
        serialize.query('SELECT 1'),
      ];
      const answers = await c.send(batch, 3);
      expect(answers.slice(0, 4)).toEqual(['parseComplete', 'bindComplete', 'rowDescription', 'D:1,u***@e***.com']);
      const tail = answers.slice(3 + ROWS).map((a) => (a.startsWith('E:') ? a.slice(0, 8) : a));
      expect(tail).toEqual([`C:SELECT ${ROWS}`, 'Z:I', 'E:42501:', 'Z:I', 'rowDescription', 'D:1', 'C:SELECT 1', 'Z:I']);
      // One write per upstream read (the server flushes at Sync and at each ReadyForQuery): not one per rewritten row.
      expect(counter.records() - before).toBeLessThanOrEqual(3);
    } finally {
      c.close();
    }
  });

  it('a client that stops reading stops the server (backpressure holds)', async () => {
    const token = await t.token();
    const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const raw = net.connect(t.port, t.host, () => raw.write(serialize.requestSsl()));
      raw.once('data', () => {
        const s = tls.connect({ socket: raw, rejectUnauthorized: false }, () => resolve(s));
      });
      raw.once('error', reject);
    });
    try {
      let ready = false;
      socket.on('data', (d: Buffer) => {
        if (d.includes(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3]))) socket.write(serialize.password(token));
        if (d.includes(Buffer.from([0x5a, 0, 0, 0, 5]))) ready = true;
      });
      socket.write(serialize.startup({ user: 'ci', database: 'app' }));
      await eventually(async () => ready);
      socket.pause(); // read nothing more
      socket.write(serialize.query("SELECT i, 'user' || i || '@example.com' AS email FROM generate_series(1, 5000000) i /* jit_wire_bp */"));
      const waiting = await eventually(
        () =>
          direct(async (c) => {
            const r = await c.query<{ wait_event: string | null }>(
              "SELECT wait_event FROM pg_stat_activity WHERE query LIKE '%jit_wire_bp%' AND pid <> pg_backend_pid() AND state = 'active'",
            );
            return r.rows[0]?.wait_event === 'ClientWrite' ? r.rows[0].wait_event : null;
          }),
        20_000,
      );
      expect(waiting).toBe('ClientWrite');
    } finally {
      socket.destroy();
    }
  });
});

describe('mysql', () => {
  let t: MysqlTestBroker;
  let counter: RecordCounter;
  beforeAll(async () => {
    t = await startMysqlBroker(MASKING);
    counter = await countRecords(t.port, (greeting) => 4 + greeting.readUIntLE(0, 3));
    const values = Array.from({ length: ROWS }, (_, i) => `(${i + 1}, 'user${i + 1}@example.com')`).join(',');
    await directMy((c) =>
      c.query(`DROP TABLE IF EXISTS jit_my_wire; CREATE TABLE jit_my_wire (id INT, email VARCHAR(60)); INSERT INTO jit_my_wire VALUES ${values}`),
    );
  });
  afterAll(async () => {
    await counter?.close();
    await t?.stop();
    await directMy((c) => c.query('DROP TABLE IF EXISTS jit_my_wire'));
  });

  it('sends a result with masked rows in one TLS record, not one per rewritten row', async () => {
    const c = await t.connect(await t.token(), { port: counter.port });
    try {
      await c.query('SELECT 1'); // settled: the session's own probe is answered
      const before = counter.records();
      const [rows] = await c.query('SELECT id, email FROM jit_my_wire ORDER BY id');
      expect((rows as { email: string }[]).map((r) => r.email).slice(0, 2)).toEqual(['u***@e***.com', 'u***@e***.com']);
      expect(rows).toHaveLength(ROWS);
      // The server sends this result in one write; the broker's answer (header, masked rows) is one write too: one
      // record (before: the first piece written at once, the rest behind it, two records or more).
      expect(counter.records() - before).toBe(1);
    } finally {
      await c.end();
    }
  });
});
