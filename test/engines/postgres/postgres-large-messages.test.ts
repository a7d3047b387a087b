// Client messages far larger than one read, through the broker to the real PostgreSQL: a 64 MB Query and a
// 64 MB CopyData, written in 64 KB slices (the broker's framer gets them in reads of at most 64 KB), arrive
// whole and unchanged; a message over the limit, its header split across reads, ends only its own
// connection, with 08P01.
import { createHash } from 'node:crypto';
import net from 'node:net';
import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Framer } from '../../../broker/engines/postgres/framing.js';
import { BASE_RULES, direct, startTestBroker, type TestBroker } from '../../support/broker.js';
import { show } from '../../support/pg-pipeline.js';

const SIZE = 64 * 1024 * 1024;
const SLICE = 64 * 1024;

let t: TestBroker;
beforeAll(async () => {
  t = await startTestBroker(BASE_RULES, { plaintext: true });
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_t_large; CREATE TABLE jit_t_large (v text)'));
}, 60_000);
afterAll(async () => {
  await t?.stop();
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_t_large'));
});
afterEach(() => vi.restoreAllMocks());

/** Printable text that is not one byte repeated (a misplaced or repeated chunk would change its md5). */
function text(n: number): string {
  const unit = Buffer.from(Array.from({ length: 997 }, (_, i) => 0x41 + ((i * 7) % 58)).filter((b) => b !== 0x5c && b !== 0x60));
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i += unit.length) unit.copy(out, i, 0, Math.min(unit.length, n - i));
  return out.toString('latin1');
}
const md5 = (s: string) => createHash('md5').update(s, 'latin1').digest('hex');

/** A raw client on plaintext loopback: what it writes goes out in 64 KB slices; answers as short strings. */
class RawClient {
  readonly socket: net.Socket;
  private readonly parser = new Parser();
  private seen: string[] = [];
  private waiting: { name: string; resolve: (m: string[]) => void; reject: (e: Error) => void } | null = null;
  closed = false;

  private constructor(token: string) {
    this.socket = net.connect(t.port, t.host);
    this.socket.on('data', (d: Buffer) =>
      this.parser.parse(d, (m) => {
        if (m.name === 'authenticationCleartextPassword') return void this.socket.write(serialize.password(token));
        this.seen.push(show(m));
        if (this.waiting && m.name === this.waiting.name) {
          const out = this.seen;
          this.seen = [];
          this.waiting.resolve(out);
          this.waiting = null;
        }
      }),
    );
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => {
      this.closed = true;
      this.waiting?.reject(new Error(`closed after ${this.seen.join(', ')}`));
    });
  }

  static async open(token: string): Promise<RawClient> {
    const c = new RawClient(token);
    const ready = c.until('readyForQuery');
    c.socket.write(serialize.startup({ user: 'ci', database: 'app' }));
    await ready;
    return c;
  }

  /** The answers up to the next message called `name`. */
  until(name: string): Promise<string[]> {
    return new Promise((resolve, reject) => (this.waiting = { name, resolve, reject }));
  }

  /** Write `bytes` in 64 KB slices, waiting for the socket to drain whenever it asks to. */
  async write(bytes: Buffer): Promise<void> {
    for (let i = 0; i < bytes.length; i += SLICE) {
      if (!this.socket.write(bytes.subarray(i, i + SLICE))) await new Promise((r) => this.socket.once('drain', r));
    }
  }

  /** Everything the broker sends until it closes the connection. */
  rest(): Promise<string[]> {
    return new Promise((resolve) => {
      if (this.closed) return resolve(this.seen);
      this.socket.on('close', () => resolve(this.seen));
    });
  }
}

/** The sizes of the reads the broker's framers are given while `fn` runs. */
async function reads(fn: () => Promise<void>): Promise<number[]> {
  const sizes: number[] = [];
  const push = Framer.prototype.push;
  vi.spyOn(Framer.prototype, 'push').mockImplementation(function (this: Framer, chunk: Buffer) {
    sizes.push(chunk.length);
    return push.call(this, chunk);
  });
  await fn();
  return sizes;
}

describe('messages larger than a read', () => {
  it('a 64 MB Query comes through whole', async () => {
    const c = await RawClient.open(await t.token());
    const literal = text(SIZE);
    const answered = c.until('readyForQuery');
    const sizes = await reads(async () => {
      await c.write(serialize.query(`SELECT length('${literal}'), md5('${literal}')`));
      expect(await answered).toEqual([expect.stringMatching(/^rowDescription/), `D:${SIZE},${md5(literal)}`, 'C:SELECT 1', 'Z:I']);
    });
    expect(sizes.length).toBeGreaterThan(2 * (SIZE / SLICE) - 1); // the Query, twice the literal, in many reads
    expect(Math.max(...sizes)).toBeLessThanOrEqual(SLICE);
    c.socket.end(serialize.end());
  }, 120_000);

  it('a 64 MB CopyData comes through whole, and the connection goes on', async () => {
    const c = await RawClient.open(await t.token());
    const row = text(SIZE);
    let answered = c.until('copyInResponse');
    await c.write(serialize.query('COPY jit_t_large (v) FROM STDIN'));
    await answered;
    answered = c.until('readyForQuery');
    await c.write(Buffer.concat([serialize.copyData(Buffer.from(`${row}\n`, 'latin1')), serialize.copyDone()]));
    expect(await answered).toEqual(['C:COPY 1', 'Z:I']);
    answered = c.until('readyForQuery');
    await c.write(serialize.query('SELECT length(v), md5(v) FROM jit_t_large'));
    expect(await answered).toEqual([expect.stringMatching(/^rowDescription/), `D:${SIZE},${md5(row)}`, 'C:SELECT 1', 'Z:I']);
    c.socket.end(serialize.end());
  }, 120_000);

  it('a message over the limit, its header split across reads, ends only its own connection, with 08P01', async () => {
    const good = await RawClient.open(await t.token());
    const bad = await RawClient.open(await t.token({ build: 'build-too-large' }));
    const header = Buffer.from([0x51, 0, 0, 0, 0]);
    header.writeInt32BE(300 * 1024 * 1024, 1); // a Query claiming 300 MiB, over the broker's 256 MiB
    for (const b of header) {
      await new Promise<void>((r) => bad.socket.write(Buffer.from([b]), () => r()));
      await new Promise((r) => setTimeout(r, 10));
    }
    const said = await bad.rest();
    expect(said).toEqual([expect.stringMatching(/^E:08P01:jit-broker: protocol violation: message of 314572800 bytes is larger than the \d+-byte limit/)]);
    const answered = good.until('readyForQuery');
    await good.write(serialize.query('SELECT 2 AS x'));
    expect(await answered).toEqual([expect.stringMatching(/^rowDescription/), 'D:2', 'C:SELECT 1', 'Z:I']);
    good.socket.end(serialize.end());
  });
});
