// What an idle client stream keeps (broker/engines/stream-buffer.ts): a session between statements holds no
// scratch buffer, whatever the size of its last message, so many idle sessions cost no buffers of their own.
// The framers of both engines are checked through the buffer they frame with.
import { describe, expect, it } from 'vitest';
import { StreamBuffer } from '../../broker/engines/stream-buffer.js';
import { Framer } from '../../broker/engines/postgres/framing.js';
import { PacketFramer } from '../../broker/engines/mysql/framing.js';
import { packet } from '../../broker/engines/mysql/protocol.js';

const bytes = (n: number, from = 0) => Buffer.from(Array.from({ length: n }, (_, i) => (from + i) & 0xff));
/** `input` in reads of `size` bytes, each a copy (as a socket hands them out). */
const reads = (input: Buffer, size: number) => {
  const out: Buffer[] = [];
  for (let i = 0; i < input.length; i += size) out.push(Buffer.from(input.subarray(i, i + size)));
  return out;
};
/** The StreamBuffer a framer cuts messages out of (private to it). */
const bufferOf = (framer: Framer | PacketFramer) => (framer as unknown as { buf: StreamBuffer }).buf;

describe('StreamBuffer memory when idle', () => {
  it('makes no scratch while every span lies within one read', () => {
    const sb = new StreamBuffer();
    for (let i = 0; i < 100; i++) {
      sb.append(bytes(300));
      expect(sb.take(100).length).toBe(100);
      expect(sb.take(200).length).toBe(200);
    }
    expect(sb.holdsScratch).toBe(false);
  });

  it('lets the scratch of a span across reads go once nothing is unread; what was handed out stays as it was', () => {
    const sb = new StreamBuffer();
    const message = bytes(200_000);
    for (const r of reads(message, 65_536)) sb.append(r);
    const taken = sb.take(message.length);
    expect(sb.length).toBe(0);
    expect(sb.holdsScratch).toBe(false);
    expect(taken.equals(message)).toBe(true);
    // The next span makes a scratch again, sized for it.
    for (const r of reads(bytes(1000, 7), 300)) sb.append(r);
    expect(sb.holdsScratch).toBe(false); // nothing asked for contiguous bytes yet
    expect(sb.take(1000).equals(bytes(1000, 7))).toBe(true);
    expect(sb.holdsScratch).toBe(false);
  });

  it('keeps the scratch while bytes are still unread (a pipeline), and lets it go when the stream runs dry', () => {
    const sb = new StreamBuffer();
    const stream = bytes(10 * 1000);
    for (const r of reads(stream, 1500)) sb.append(r); // 1000-byte spans: most cross a read
    const scratches = new Set<ArrayBufferLike>();
    for (let at = 0; at < stream.length; at += 1000) {
      const span = sb.take(1000);
      expect(span.equals(stream.subarray(at, at + 1000))).toBe(true);
      if (span.buffer.byteLength === 16 * 1024) scratches.add(span.buffer); // copied into the scratch
    }
    expect(scratches.size).toBe(1); // one scratch served every span of the busy stretch
    expect(sb.length).toBe(0);
    expect(sb.holdsScratch).toBe(false);
  });

  it('skip() and takeAll() that empty the stream let the scratch go too', () => {
    const sb = new StreamBuffer();
    for (const r of reads(bytes(50_000), 4096)) sb.append(r);
    sb.contiguous(30_000);
    expect(sb.holdsScratch).toBe(true);
    expect(sb.skip(50_000)).toBe(50_000);
    expect(sb.holdsScratch).toBe(false);
    for (const r of reads(bytes(50_000), 4096)) sb.append(r);
    sb.contiguous(30_000);
    expect(sb.takeAll().equals(bytes(50_000))).toBe(true);
    expect(sb.holdsScratch).toBe(false);
  });
});

describe('a session framer after a large message', () => {
  it('PostgreSQL: a 200 KB Bind in 16 KB reads (TLS records), then idle: the framer keeps no scratch', () => {
    const framer = new Framer(1 << 30);
    const body = bytes(200_000);
    const message = Buffer.alloc(5 + body.length);
    message.write('B', 0, 'latin1');
    message.writeInt32BE(4 + body.length, 1);
    body.copy(message, 5);
    for (let session = 0; session < 3; session++) {
      for (const r of reads(message, 16_384)) framer.push(r);
      const frame = framer.next();
      expect(frame?.type).toBe('B');
      expect(frame?.body.equals(body)).toBe(true);
      expect(framer.next()).toBeNull();
      expect(bufferOf(framer).holdsScratch).toBe(false);
    }
  });

  it('MySQL: a 400 KB COM_QUERY in 64 KB reads, then idle: the framer keeps no scratch', () => {
    const framer = new PacketFramer(1 << 30);
    const sql = Buffer.concat([Buffer.from([0x03]), Buffer.from(`SELECT '${'x'.repeat(400_000)}'`)]);
    for (const r of reads(packet(0, sql), 65_536)) framer.push(r);
    expect(framer.next()?.payload.equals(sql)).toBe(true);
    expect(framer.next()).toBeNull();
    expect(bufferOf(framer).holdsScratch).toBe(false);
  });
});
