// A 100k-row result with a masked column through the broker: every row masked, and the broker's memory
// flat while a slow client reads it (backpressure holds when rows are rewritten). pgbench with a custom
// script selecting a masked column, in the three query modes.
import net from 'node:net';
import tls from 'node:tls';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { direct, psqlEnv, run, startTestBroker, type TestBroker } from '../support/broker.js';
import { MASKING_CONFIG, setup, teardown } from '../support/masking.js';

const ROWS = 100_000;
const PAD = 1000; // ~100 MB of result: buffering it would show

let t: TestBroker;
beforeAll(async () => {
  await setup();
  await direct((c) =>
    c.query(`DROP TABLE IF EXISTS jit_big;
      CREATE TABLE jit_big AS SELECT g AS id, 'user' || g || '@example.com' AS email, repeat('x', ${PAD}) AS pad FROM generate_series(1, ${ROWS}) g`),
  );
  t = await startTestBroker(MASKING_CONFIG);
}, 120_000);
afterAll(async () => {
  await t?.stop();
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_big'));
  await teardown();
});

/**
 * Run one simple Query, reading the answer slowly (a pause every 256 KiB). Rows are looked at in place
 * (no strings made of them), so that the memory measured is the broker's, not this client's garbage.
 */
async function slowQuery(token: string, sql: string, onRow: (row: Buffer) => void): Promise<void> {
  const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const raw = net.connect(t.port, t.host, () => raw.write(serialize.requestSsl()));
    raw.once('data', () => {
      const s = tls.connect({ socket: raw, rejectUnauthorized: false }, () => resolve(s));
    });
    raw.once('error', reject);
  });
  let buf: Buffer = Buffer.alloc(0);
  let ready = 0;
  let sinceBreak = 0;
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      sinceBreak += d.length;
      if (sinceBreak > 256 * 1024) {
        sinceBreak = 0;
        socket.pause();
        setTimeout(() => socket.resume(), 2);
      }
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      let pos = 0;
      while (buf.length - pos >= 5) {
        const len = buf.readInt32BE(pos + 1);
        if (buf.length - pos < len + 1) break;
        const type = buf[pos];
        const body = buf.subarray(pos + 5, pos + 1 + len);
        pos += len + 1;
        if (type === 0x44) onRow(body);
        else if (type === 0x52 && body.readInt32BE(0) === 3) socket.write(serialize.password(token));
        else if (type === 0x45) reject(new Error(body.toString()));
        else if (type === 0x5a && ++ready === 1) socket.write(serialize.query(sql));
        else if (type === 0x5a) resolve();
      }
      buf = buf.subarray(pos);
    });
    socket.write(serialize.startup({ user: 'ci', database: 'app' }));
  });
  socket.end(serialize.end());
}

/** The fields of a DataRow body, as views into it. */
function fields(body: Buffer): (Buffer | null)[] {
  const out: (Buffer | null)[] = [];
  let pos = 2;
  for (let i = body.readInt16BE(0); i > 0; i--) {
    const len = body.readInt32BE(pos);
    out.push(len < 0 ? null : body.subarray(pos + 4, pos + 4 + len));
    pos += 4 + Math.max(0, len);
  }
  return out;
}

describe('a 100k-row result', () => {
  it('is masked row by row, and the broker does not hold it (RSS stays within a bound while a slow client reads)', async () => {
    const token = await t.token();
    const before = process.memoryUsage();
    let rss = before.rss;
    let buffers = before.arrayBuffers;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      rss = Math.max(rss, m.rss);
      buffers = Math.max(buffers, m.arrayBuffers);
    }, 10);
    let rows = 0;
    let bad = 0;
    try {
      const want = Buffer.from('u***@e***.com');
      await slowQuery(token, 'SELECT id, email, pad FROM jit_big', (row) => {
        rows++;
        const f = fields(row);
        if (!f[1]?.equals(want) || f[2]?.length !== PAD) bad++;
      });
    } finally {
      clearInterval(sampler);
    }
    expect(rows).toBe(ROWS);
    expect(bad).toBe(0);
    // The result is ~100 MB. Measured on this relay: with backpressure, Buffers peak ~20 MB above the start
    // and RSS ~40-60 MB (allocator slack); with it disabled, Buffers +136 MB and RSS +270 MB.
    const mb = (n: number) => n / 1024 / 1024;
    expect(mb(buffers - before.arrayBuffers)).toBeLessThan(48);
    expect(mb(rss - before.rss)).toBeLessThan(128);
  }, 120_000);

  it('psql gets all of it masked', async () => {
    const out = join(t.dir, 'big.txt');
    const r = await run('psql', ['-X', '-A', '-t', '-o', out, '-c', 'SELECT id, email FROM jit_big ORDER BY id'], psqlEnv(t, await t.token()));
    expect(r.stderr).toBe('');
    const lines = (await import('node:fs')).readFileSync(out, 'utf8').trimEnd().split('\n');
    expect(lines.length).toBe(ROWS);
    expect(lines.filter((l) => !l.endsWith('|u***@e***.com'))).toEqual([]);
  }, 120_000);
});

describe('pgbench', () => {
  it('runs a custom script selecting masked columns in simple, extended and prepared modes', async () => {
    const script = join(t.dir, 'masked.sql');
    writeFileSync(script, '\\set id random(1, 3)\nSELECT email, card_number, phone FROM jit_customers WHERE id = :id;\n');
    const env = psqlEnv(t, await t.token());
    for (const mode of ['simple', 'extended', 'prepared']) {
      const r = await run('pgbench', ['-n', '-f', script, '-M', mode, '-c', '2', '-j', '2', '-t', '50'], env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('number of transactions actually processed: 100/100');
    }
  }, 60_000);
});
