// What framing a client's bytes costs: the PostgreSQL and MySQL client framers (stream-buffer.ts) against the
// algorithm they replaced (kept inline below: the unread remainder concatenated with every read), in process,
// no sockets. MB/s of input framed, best of RUNS, for
//   - one 64 MB message (a Query; a COM_QUERY of four 16 MiB packets) arriving in 64 KB reads — the old
//     algorithm copies the whole remainder on every read, so it is quadratic in the message's size;
//   - 64 MB of small messages (100-byte Queries; 100-byte COM_QUERY packets) in 64 KB reads, so that a
//     message straddles nearly every read boundary — the common case must not get slower.
//
// usage: npx tsx bench/framing.ts        (MB=64 CHUNK=65536 RUNS=7)
import { Framer } from '../broker/engines/postgres/framing.js';
import { PacketFramer } from '../broker/engines/mysql/framing.js';
import { MAX_PACKET, packet } from '../broker/engines/mysql/protocol.js';

const MB = Number(process.env.MB ?? 64);
const CHUNK = Number(process.env.CHUNK ?? 65536);
const RUNS = Number(process.env.RUNS ?? 7);
const SIZE = MB * 1024 * 1024;

/** The PostgreSQL framer before issue 12 (broker/engines/postgres/framing.ts at 6757ff5). */
class OldPgFramer {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  constructor(private readonly maxMessage: number) {}
  push(chunk: Buffer): void {
    if (this.pos >= this.buf.length) this.buf = chunk;
    else this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk]);
    this.pos = 0;
  }
  next(): { type: string; body: Buffer; raw: Buffer } | null {
    const avail = this.buf.length - this.pos;
    if (avail < 5) return null;
    const type = String.fromCharCode(this.buf[this.pos]!);
    const len = this.buf.readInt32BE(this.pos + 1);
    if (len < 4 || len > this.maxMessage) throw new Error('bad length');
    const total = len + 1;
    if (avail < total) return null;
    const raw = this.buf.subarray(this.pos, this.pos + total);
    this.pos += total;
    return { type, body: raw.subarray(5), raw };
  }
}

/** The MySQL framer before issue 12 (its walk over the packets of one message; no oversize skipping). */
class OldMyFramer {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  push(chunk: Buffer): void {
    if (this.pos >= this.buf.length) this.buf = chunk;
    else this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk]);
    this.pos = 0;
  }
  next(): { payload: Buffer; raw: Buffer } | null {
    const buf = this.buf;
    let p = this.pos;
    let packets = 0;
    let total = 0;
    for (;;) {
      if (buf.length - p < 4) return null;
      const len = buf.readUIntLE(p, 3);
      total += len;
      if (buf.length - p - 4 < len) return null;
      p += 4 + len;
      packets++;
      if (len < MAX_PACKET) break;
    }
    const raw = buf.subarray(this.pos, p);
    let payload = raw.subarray(4);
    if (packets > 1) {
      const parts: Buffer[] = [];
      for (let q = 0; q < raw.length; ) {
        const len = raw.readUIntLE(q, 3);
        parts.push(raw.subarray(q + 4, q + 4 + len));
        q += 4 + len;
      }
      payload = Buffer.concat(parts, total);
    }
    this.pos = p;
    return { payload, raw };
  }
}

interface AnyFramer {
  push(chunk: Buffer): void;
  next(): object | null;
}

function pgQuery(sqlBytes: number): Buffer {
  const m = Buffer.alloc(sqlBytes + 6, 0x61);
  m[0] = 0x51;
  m.writeInt32BE(sqlBytes + 5, 1);
  m[m.length - 1] = 0;
  return m;
}
const myQuery = (sqlBytes: number) => packet(0, Buffer.concat([Buffer.from([0x03]), Buffer.alloc(sqlBytes - 1, 0x61)]));

/** Input of about SIZE bytes: messages until it is full. */
function repeat(message: Buffer): Buffer {
  return Buffer.concat(Array.from({ length: Math.max(1, Math.floor(SIZE / message.length)) }, () => message));
}

/** `input` in CHUNK-byte reads (copies, as a socket gives them). */
function chunked(input: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < input.length; i += CHUNK) chunks.push(Buffer.from(input.subarray(i, i + CHUNK)));
  return chunks;
}

/** Frame all the chunks once: ms taken, and messages seen. */
function once(make: () => AnyFramer, chunks: Buffer[]): { ms: number; messages: number } {
  const f = make();
  let messages = 0;
  const t0 = process.hrtime.bigint();
  for (const c of chunks) {
    f.push(c);
    while (f.next()) messages++;
  }
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, messages };
}
const cases: Array<{ name: string; input: Buffer; large?: boolean; before: () => AnyFramer; after: () => AnyFramer }> = [
  { name: `postgres: one ${MB} MB Query`, large: true, input: pgQuery(SIZE - 6), before: () => new OldPgFramer(1 << 30), after: () => new Framer(1 << 30) },
  { name: 'postgres: 100-byte Queries', input: repeat(pgQuery(94)), before: () => new OldPgFramer(1 << 30), after: () => new Framer(1 << 30) },
  {
    name: `mysql: one ${MB} MB COM_QUERY`,
    large: true,
    input: myQuery(SIZE - 4 * Math.ceil(SIZE / MAX_PACKET)),
    before: () => new OldMyFramer(),
    after: () => new PacketFramer(1 << 30),
  },
  { name: 'mysql: 100-byte COM_QUERYs', input: repeat(myQuery(96)), before: () => new OldMyFramer(), after: () => new PacketFramer(1 << 30) },
];

console.log(`${MB} MB in ${CHUNK}-byte reads, best of ${RUNS} (the old algorithm on one large message: one run, it is slow)`);
console.log(`${'case'.padEnd(34)} ${'before MB/s'.padStart(12)} ${'after MB/s'.padStart(12)} ${'ratio'.padStart(8)}`);
for (const c of cases) {
  const chunks = chunked(c.input);
  const best = { before: Infinity, after: Infinity };
  const seen = { before: 0, after: 0 };
  // Interleaved, so that warm-up and garbage collection fall on both alike.
  for (let r = 0; r < RUNS; r++) {
    for (const k of ['before', 'after'] as const) {
      if (k === 'before' && c.large && r > 0) continue;
      const { ms, messages } = once(c[k], chunks);
      best[k] = Math.min(best[k], ms);
      seen[k] = messages;
    }
  }
  if (seen.before !== seen.after) throw new Error(`${c.name}: ${seen.before} messages before, ${seen.after} after`);
  const mbps = (ms: number) => c.input.length / 1024 / 1024 / (ms / 1000);
  console.log(
    `${c.name.padEnd(34)} ${mbps(best.before).toFixed(0).padStart(12)} ${mbps(best.after).toFixed(0).padStart(12)} ${(best.before / best.after).toFixed(1).padStart(7)}×`,
  );
}
