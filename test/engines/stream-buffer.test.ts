// The buffer both engines frame a client's bytes with (broker/engines/stream-buffer.ts), and the two framers on
// it: split headers, many messages per read, one message across many reads, compaction and growth of the
// scratch buffer, the lifetime of what is handed out, and the size limits.
import { describe, expect, it } from 'vitest';
import { StreamBuffer } from '../../broker/engines/stream-buffer.js';
import { Framer, type Frame } from '../../broker/engines/postgres/framing.js';
import { ProtocolError } from '../../broker/engines/postgres/messages.js';
import { MessageTooLarge, PacketFramer, type Message } from '../../broker/engines/mysql/framing.js';
import { ER, MAX_PACKET, packet, ProtocolError as MyProtocolError } from '../../broker/engines/mysql/protocol.js';

const bytes = (n: number, from = 0) => Buffer.from(Array.from({ length: n }, (_, i) => (from + i) & 0xff));
/** Whether `view` lies in `chunk`'s memory at `offset` (handed out without a copy). */
const inPlace = (view: Buffer, chunk: Buffer, offset: number) => view.buffer === chunk.buffer && view.byteOffset === chunk.byteOffset + offset;
/** `input` cut at the given offsets, each piece a copy (as a socket hands out reads). */
const cut = (input: Buffer, at: number[]) => [0, ...at, input.length].slice(1).map((end, i, a) => Buffer.from(input.subarray(i === 0 ? 0 : a[i - 1], end)));
const slices = (input: Buffer, size: number) =>
  cut(
    input,
    Array.from({ length: Math.ceil(input.length / size) - 1 }, (_, i) => (i + 1) * size),
  );

/** A frontend message: type byte, length, body. */
function pgMessage(type: string, body: Buffer): Buffer {
  const m = Buffer.alloc(5 + body.length);
  m.write(type, 0, 'latin1');
  m.writeInt32BE(4 + body.length, 1);
  body.copy(m, 5);
  return m;
}
const query = (sql: string) => pgMessage('Q', Buffer.from(`${sql}\0`));

describe('StreamBuffer', () => {
  it('hands out a span within one chunk as a subarray of it, and copies nothing to do so', () => {
    const sb = new StreamBuffer();
    const chunk = bytes(100);
    sb.append(chunk);
    expect(sb.contiguous(10)).toBe(0);
    expect(sb.front).toBe(chunk);
    const a = sb.take(30);
    const b = sb.take(70);
    expect(inPlace(a, chunk, 0) && inPlace(b, chunk, 30)).toBe(true);
    expect(sb.length).toBe(0);
    // The next chunk is the front again, as it came.
    const next = bytes(10);
    sb.append(next);
    expect(sb.front).toBe(next);
  });

  it('waits for a span to be all there before copying it, then copies it once', () => {
    const sb = new StreamBuffer();
    const input = bytes(10_000);
    const pieces = slices(input, 64);
    for (const p of pieces.slice(0, -1)) {
      sb.append(p);
      expect(sb.contiguous(10_000)).toBe(-1);
      expect(sb.front).toBe(pieces[0]); // nothing gathered yet
    }
    sb.append(pieces.at(-1)!);
    const all = sb.take(10_000);
    expect(all.equals(input)).toBe(true);
    expect(all.buffer).not.toBe(pieces[0]!.buffer);
  });

  it('a span across chunks at every split point: correct bytes, and the rest of the chunk is not copied', () => {
    const input = bytes(40);
    for (let a = 1; a < 40; a++) {
      const [x, y] = cut(input, [a]);
      const sb = new StreamBuffer();
      sb.append(x!);
      sb.append(y!);
      const n = Math.min(40, a + 3);
      expect(sb.peek(n)!.equals(input.subarray(0, n))).toBe(true);
      expect(sb.take(n).equals(input.subarray(0, n))).toBe(true);
      if (n < 40) {
        const rest = sb.take(40 - n);
        expect(rest.equals(input.subarray(n))).toBe(true);
        expect(inPlace(rest, y!, n - a)).toBe(true);
      }
    }
  });

  it('compacts the scratch in place when nothing was handed out of it, and moves to a new one when something was', () => {
    for (const lend of [false, true]) {
      const sb = new StreamBuffer();
      const input = bytes(10 + 16_000 + 1000);
      const [a, b, c] = cut(input, [10, 16_010]);
      sb.append(a!);
      sb.append(b!);
      expect(sb.contiguous(16_010)).toBe(0); // gathered into a scratch of 16 KiB
      const scratch = sb.front;
      expect(scratch.length).toBe(16 * 1024);
      const lent = lend ? sb.take(16_000) : null;
      if (!lend) expect(sb.skip(16_000)).toBe(16_000);
      const copy = lent ? Buffer.from(lent) : null;
      sb.append(c!);
      // 10 bytes left in the scratch, 1000 wanted: not room enough after them.
      const at = sb.contiguous(1000);
      expect(sb.front.subarray(at, at + 1000).equals(input.subarray(16_000, 17_000))).toBe(true);
      if (lend) {
        expect(sb.front).not.toBe(scratch);
        expect(lent!.equals(copy!)).toBe(true); // what was handed out is never written again
      } else {
        expect(sb.front).toBe(scratch);
        expect(at).toBe(0);
      }
    }
  });

  it('grows the scratch geometrically when a span is made contiguous a part at a time', () => {
    const sb = new StreamBuffer();
    for (const c of slices(bytes(100_000), 1000)) sb.append(c);
    const sizes = [1500, 20_000, 40_000, 70_000, 100_000].map((n) => (sb.contiguous(n), sb.front.length));
    expect(sizes).toEqual([16_384, 32_768, 65_536, 131_072, 131_072]);
    expect(sb.take(100_000).equals(bytes(100_000))).toBe(true);
  });

  it('lets a large scratch go once read past (a view keeps it while held)', () => {
    const sb = new StreamBuffer();
    const big = bytes(2 * 1024 * 1024);
    for (const c of slices(big, 65536)) sb.append(c);
    const held = sb.take(big.length);
    const small = bytes(20);
    for (const c of cut(small, [3, 10])) sb.append(c);
    sb.contiguous(20);
    expect(sb.front.length).toBe(16 * 1024);
    expect(held.equals(big)).toBe(true);
  });

  it('skips across many chunks without copying, and takeAll gives what is left', () => {
    const sb = new StreamBuffer();
    const input = bytes(5000);
    const pieces = slices(input, 7);
    for (const p of pieces) sb.append(p);
    expect(sb.skip(4000)).toBe(4000);
    expect(sb.length).toBe(1000);
    expect(sb.takeAll().equals(input.subarray(4000))).toBe(true);
    expect(sb.length).toBe(0);
    expect(sb.skip(10)).toBe(0);
    sb.append(pieces[0]!);
    const one = sb.takeAll();
    expect(inPlace(one, pieces[0]!, 0)).toBe(true);
    expect(() => sb.take(1)).toThrow(RangeError);
  });

  it('every byte comes out once and in order, whatever the reads and the spans', () => {
    const input = bytes(200_000);
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n) + 1;
    const sb = new StreamBuffer();
    const held: Array<[Buffer, number]> = [];
    let fed = 0;
    let out = 0;
    while (out < input.length) {
      if (fed < input.length) {
        const n = Math.min(rand(3000), input.length - fed);
        sb.append(Buffer.from(input.subarray(fed, fed + n)));
        fed += n;
      }
      for (;;) {
        const want = Math.min(rand(5000), input.length - out);
        if (want === 0 || sb.length < want) break;
        if (want % 3 === 0) {
          expect(sb.skip(want)).toBe(want);
        } else {
          held.push([sb.take(want), out]);
        }
        out += want;
      }
    }
    // Everything taken is still what it was, after all the appends and gathers since.
    for (const [v, at] of held) expect(v.equals(input.subarray(at, at + v.length))).toBe(true);
  });
});

describe('the PostgreSQL framer', () => {
  const stream = Buffer.concat([query('SELECT 1'), pgMessage('S', Buffer.alloc(0)), query('x'.repeat(300)), pgMessage('X', Buffer.alloc(0))]);
  const expected = ['Q', 'S', 'Q', 'X'];

  const frameAll = (pieces: Buffer[]) => {
    const f = new Framer(1 << 20);
    const frames: Frame[] = [];
    for (const p of pieces) {
      f.push(p);
      for (let m = f.next(); m; m = f.next()) frames.push(m);
    }
    return { frames, buffered: f.buffered };
  };

  it('many messages in one read: each a subarray of the read', () => {
    const chunk = Buffer.from(stream);
    const { frames } = frameAll([chunk]);
    expect(frames.map((m) => m.type)).toEqual(expected);
    let at = 0;
    for (const m of frames) {
      expect(inPlace(m.raw, chunk, at)).toBe(true);
      at += m.raw.length;
    }
  });

  it('split anywhere (headers too), in two and three reads: the same messages, and they stay as they were', () => {
    for (let a = 0; a <= stream.length; a++) {
      for (const b of [a, Math.min(stream.length, a + 1), Math.min(stream.length, a + 4)]) {
        const pieces = cut(stream, [a, b]);
        const { frames, buffered } = frameAll(pieces);
        expect(frames.map((m) => m.type)).toEqual(expected);
        expect(Buffer.concat(frames.map((m) => m.raw)).equals(stream)).toBe(true);
        expect(frames[2]!.body.toString()).toBe(`${'x'.repeat(300)}\0`);
        expect(buffered).toBe(0);
      }
    }
  });

  it('one byte at a time', () => {
    const { frames } = frameAll(slices(stream, 1));
    expect(Buffer.concat(frames.map((m) => m.raw)).equals(stream)).toBe(true);
  });

  it('a 64 MB Query in 64 KB reads: one message, its body whole', () => {
    const sql = Buffer.alloc(64 * 1024 * 1024, 0x61);
    const big = pgMessage('Q', sql);
    const f = new Framer(256 * 1024 * 1024);
    const frames: Frame[] = [];
    for (const p of slices(Buffer.concat([big, query('SELECT 2')]), 65536)) {
      f.push(p);
      for (let m = f.next(); m; m = f.next()) frames.push(m);
    }
    expect(frames.map((m) => [m.type, m.body.length])).toEqual([
      ['Q', sql.length],
      ['Q', 9],
    ]);
    expect(frames[0]!.body.equals(sql)).toBe(true);
    expect(frames[1]!.body.toString()).toBe('SELECT 2\0');
  });

  it('refuses a length over the limit when its header is whole, before the body comes, even with the header split', () => {
    const f = new Framer(1000);
    const header = Buffer.from([0x51, 0, 0, 0, 0]);
    header.writeInt32BE(300 * 1024 * 1024, 1);
    for (const b of slices(header, 1).slice(0, 4)) {
      f.push(b);
      expect(f.next()).toBeNull();
    }
    f.push(header.subarray(4));
    expect(() => f.next()).toThrow(/message of 314572800 bytes is larger than the 1000-byte limit/);
    const short = new Framer(1000);
    short.push(Buffer.from([0x51, 0, 0]));
    short.push(Buffer.from([0, 3]));
    expect(() => short.next()).toThrow(ProtocolError);
  });

  it('startup messages (no type byte), then the rest taken out at login', () => {
    const startup = Buffer.from('\0\0\0\0\0\x03\0\0user\0ci\0\0', 'latin1');
    startup.writeInt32BE(startup.length, 0);
    const password = pgMessage('p', Buffer.from('token\0'));
    const after = query('SELECT 1');
    const f = new Framer(10_000, true);
    for (const p of cut(Buffer.concat([startup, password, after]), [3, startup.length + 2, startup.length + password.length + 2])) f.push(p);
    expect(f.next()!.body.readInt32BE(0)).toBe(0x30000);
    f.startup = false;
    expect(f.next()!.type).toBe('p');
    expect(f.rest().equals(after)).toBe(true);
    expect(f.buffered).toBe(0);
  });
});

describe('the MySQL packet framer', () => {
  const comQuery = (seq: number, sql: string | Buffer) => packet(seq, Buffer.concat([Buffer.from([0x03]), Buffer.from(sql)]));
  const frameAll = (f: PacketFramer, pieces: Buffer[]) => {
    const out: Array<Message | Error> = [];
    for (const p of pieces) {
      f.push(p);
      for (;;) {
        try {
          const m = f.next();
          if (!m) break;
          out.push(m);
        } catch (e) {
          out.push(e as Error);
          if (!(e instanceof MessageTooLarge)) return out;
        }
      }
    }
    return out;
  };

  it('several packets split anywhere: the same messages', () => {
    const stream = Buffer.concat([comQuery(0, 'SELECT 1'), comQuery(0, 'x'.repeat(200)), packet(0, Buffer.from([0x01]))]);
    for (let a = 0; a <= stream.length; a++) {
      const out = frameAll(new PacketFramer(1 << 20), cut(stream, [a, Math.min(stream.length, a + 3)])) as Message[];
      expect(out.map((m) => m.payload.length)).toEqual([9, 201, 1]);
      expect(Buffer.concat(out.map((m) => m.raw)).equals(stream)).toBe(true);
    }
  });

  it('a message of more than 16 MiB (two packets) in 64 KB reads: payload and packets as sent', () => {
    const sql = Buffer.alloc(MAX_PACKET + 100, 0x62);
    const big = comQuery(0, sql);
    expect([big.readUIntLE(0, 3), big[3], big[4 + MAX_PACKET + 3]]).toEqual([MAX_PACKET, 0, 1]);
    const out = frameAll(new PacketFramer(1 << 25), slices(Buffer.concat([big, comQuery(0, 'SELECT 2')]), 65536)) as Message[];
    expect(out.map((m) => [m.seq, m.lastSeq, m.payload.length])).toEqual([
      [0, 1, MAX_PACKET + 101],
      [0, 0, 9],
    ]);
    expect(out[0]!.payload.subarray(1).equals(sql)).toBe(true);
    expect(out[0]!.raw.equals(big)).toBe(true);
  });

  it('a payload of exactly 0xffffff bytes ends with an empty packet', () => {
    const big = packet(5, Buffer.alloc(MAX_PACKET, 0x63));
    expect(big.length).toBe(MAX_PACKET + 8);
    const out = frameAll(new PacketFramer(1 << 25), slices(big, 65536)) as Message[];
    expect(out.map((m) => [m.seq, m.lastSeq, m.payload.length])).toEqual([[5, 6, MAX_PACKET]]);
  });

  it('skipOversized: reads past a message over the limit without keeping it, then the next message is framed', () => {
    const big = comQuery(3, Buffer.alloc(MAX_PACKET * 2 + 10, 0x64)); // three packets, seq 3, 4, 5
    const stream = Buffer.concat([big, comQuery(6, 'SELECT 1')]);
    const f = new PacketFramer(64 * 1024, true);
    const out = frameAll(f, slices(stream, 65536));
    expect(out[0]).toBeInstanceOf(MessageTooLarge);
    expect(out[0]).toMatchObject({ size: MAX_PACKET * 2 + 11, lastSeq: 5, code: ER.NET_PACKET_TOO_LARGE });
    expect((out[1] as Message).payload.toString('latin1', 1)).toBe('SELECT 1');
    expect(f.buffered).toBe(0);
  });

  it('without skipOversized, the error comes at the header that shows it; packets out of order are refused', () => {
    const f = new PacketFramer(1000);
    f.push(comQuery(0, 'x'.repeat(2000)).subarray(0, 4));
    expect(() => f.next()).toThrow(/larger than the broker accepts/);
    const g = new PacketFramer(1 << 25);
    const bad = Buffer.concat([packet(0, Buffer.alloc(MAX_PACKET)).subarray(0, 4 + MAX_PACKET), packet(7, Buffer.from('x'))]);
    for (const p of slices(bad, 65536)) g.push(p);
    expect(() => g.next()).toThrow(MyProtocolError);
  });
});
