// A statement of more than 16 MiB (one logical message of several wire packets) through the broker to the real
// MariaDB: from a raw socket in 64 KB slices, and from mysql2 over TLS. MariaDB's max_allowed_packet is raised
// to 64 MiB for the test (and put back after): at its default 16 MiB the server itself refuses the statement.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_PACKET, packet } from '../../../broker/engines/mysql/protocol.js';
import { readTextRow } from '../../../broker/engines/mysql/results.js';
import { directMy, rawLogin, startMysqlBroker, type MysqlTestBroker } from '../../support/mysql.js';

const SIZE = 20 * 1024 * 1024;
const SLICE = 64 * 1024;

let t: MysqlTestBroker;
let maxAllowed = 0;
beforeAll(async () => {
  maxAllowed = await directMy(async (c) => Number(((await c.query('SELECT @@GLOBAL.max_allowed_packet AS m'))[0] as Array<{ m: number }>)[0]!.m));
  if (maxAllowed < 64 * 1024 * 1024) await directMy((c) => c.query('SET GLOBAL max_allowed_packet = 64 * 1024 * 1024'));
  t = await startMysqlBroker(undefined, { plaintext: true }); // its upstream connections see the new setting
}, 60_000);
afterAll(async () => {
  await t?.stop();
  if (maxAllowed && maxAllowed < 64 * 1024 * 1024) await directMy((c) => c.query(`SET GLOBAL max_allowed_packet = ${maxAllowed}`));
});

/** Printable text that is not one byte repeated (a misplaced or repeated chunk would change its md5). */
function text(n: number): string {
  const unit = Buffer.from(Array.from({ length: 997 }, (_, i) => 0x41 + ((i * 7) % 58)).filter((b) => b !== 0x5c && b !== 0x27));
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i += unit.length) unit.copy(out, i, 0, Math.min(unit.length, n - i));
  return out.toString('latin1');
}
const md5 = (s: string) => createHash('md5').update(s, 'latin1').digest('hex');

describe('a statement of more than 16 MiB', () => {
  it('from a raw socket, in 64 KB slices: whole, in several packets, and answered in sequence', async () => {
    const { socket, io } = await rawLogin(t.port, await t.token());
    const literal = text(SIZE);
    const sql = Buffer.from(`SELECT LENGTH('${literal}'), MD5('${literal}')`, 'latin1');
    const message = packet(0, Buffer.concat([Buffer.from([0x03]), sql]));
    const packets = Math.floor((sql.length + 1) / MAX_PACKET) + 1;
    expect(packets).toBe(3);
    for (let i = 0; i < message.length; i += SLICE) {
      if (!socket.write(message.subarray(i, i + SLICE))) await new Promise((r) => socket.once('drain', r));
    }
    const columns = await io.read();
    expect({ seq: columns.seq, count: columns.payload[0] }).toEqual({ seq: packets, count: 2 });
    await io.read();
    await io.read();
    expect((await io.read()).payload[0]).toBe(0xfe); // EOF after the column definitions
    const row = readTextRow((await io.read()).payload, 2).map((v) => v?.toString());
    expect(row).toEqual([String(SIZE), md5(literal)]);
    expect((await io.read()).payload[0]).toBe(0xfe);
    socket.end();
  }, 120_000);

  it('from mysql2 over TLS, and the connection goes on', async () => {
    const c = await t.connect(await t.token());
    try {
      const literal = text(SIZE);
      const [rows] = await c.query(`SELECT LENGTH('${literal}') AS n, MD5('${literal}') AS h`);
      expect(rows).toEqual([{ n: SIZE, h: md5(literal) }]);
      const [again] = await c.query('SELECT 2 AS x');
      expect(again).toEqual([{ x: 2 }]);
    } finally {
      await c.end();
    }
  }, 120_000);
});
