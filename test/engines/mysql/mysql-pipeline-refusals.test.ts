// Refusals inside a pipeline on the MySQL engine: commands sent in one write, some refused, while admission
// is slow (each audit record waits first). Every command gets its own answer, in order, with the right sequence
// id — the broker's ERR for a refused one lands between the server's answers to the commands around it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PacketIO } from '../../../broker/engines/mysql/framing.js';
import { packet, readErr } from '../../../broker/engines/mysql/protocol.js';
import { sleep, slowAdmission } from '../../support/broker.js';
import { directMy, rawLogin, startMysqlBroker, type MysqlTestBroker } from '../../support/mysql.js';

const RULES = `
rules:
  - { id: no-wipe, kinds: [destructive], action: deny, message: "wiping tables is not allowed through the broker" }
  - { id: day-to-day, kinds: [read, write], action: allow }
  - { id: transactions, kinds: [admin], action: allow }
default: deny
`;
const DENIED = "ERR:1227:jit-broker: wiping tables is not allowed through the broker (rule 'no-wipe')";

let t: MysqlTestBroker;
beforeAll(async () => {
  t = await startMysqlBroker(RULES, { plaintext: true });
  await directMy((c) => c.query('DROP TABLE IF EXISTS jit_mp_pipe; CREATE TABLE jit_mp_pipe (id INT); INSERT INTO jit_mp_pipe VALUES (1), (2)'));
});
afterAll(async () => {
  await t?.stop();
  await directMy((c) => c.query('DROP TABLE IF EXISTS jit_mp_pipe'));
});

const ids = () => directMy(async (c) => ((await c.query('SELECT id FROM jit_mp_pipe ORDER BY id'))[0] as { id: number }[]).map((r) => r.id));
const query = (sql: string) => packet(0, Buffer.concat([Buffer.from([0x03]), Buffer.from(sql)]));
const prepare = (sql: string) => packet(0, Buffer.concat([Buffer.from([0x16]), Buffer.from(sql)]));
/** COM_STMT_EXECUTE of MariaDB's "the statement prepared last" (no parameters). */
function executeLast(): Buffer {
  const b = Buffer.alloc(10);
  b[0] = 0x17;
  b.writeUInt32LE(0xffffffff, 1);
  b.writeUInt32LE(1, 6);
  return packet(0, b);
}

type Answer = 'text' | 'binary' | 'prepare';

/** One command's answer as a short string: `OK`, `ERR:<code>:<message>`, `ROWS:<first column of each row>` or `PREPARED`. */
async function answer(io: PacketIO, kind: Answer): Promise<string> {
  const first = await io.read();
  const p = first.payload;
  if (first.seq !== 1) throw new Error(`answer starts with sequence id ${first.seq}`);
  if (p[0] === 0xff) {
    const e = readErr(p);
    return `ERR:${e.errno}:${e.message}`;
  }
  if (p[0] === 0x00 && kind !== 'prepare') return 'OK';
  if (p[0] === 0x00) {
    // PREPARE_OK: parameter and column definitions follow, each list ended by EOF.
    const lists = (p.readUInt16LE(5) ? 1 : 0) + (p.readUInt16LE(7) ? 1 : 0);
    for (let left = lists; left > 0; ) if ((await io.read()).payload[0] === 0xfe) left--;
    return 'PREPARED';
  }
  while ((await io.read()).payload[0] !== 0xfe); // column definitions
  const rows: string[] = [];
  for (;;) {
    const r = (await io.read()).payload;
    if (r[0] === 0xfe && r.length < 9) break;
    // Text: a length-prefixed string; binary: header, null bitmap, then the value (an integer here).
    rows.push(kind === 'binary' ? String(r.readIntLE(2, Math.min(6, r.length - 2))) : r.toString('utf8', 1, 1 + r[0]!));
  }
  return `ROWS:${rows.join(',')}`;
}

describe('pipelined commands while admission is slow', () => {
  const waits = [() => sleep(5), () => sleep(1), () => new Promise<void>((r) => setImmediate(r))];

  /** Send `batch` in one write, 50 times over one connection; `kinds`: what each answer is read as. */
  async function repeatedly(batch: Buffer[], kinds: Answer[], expected: string[]): Promise<void> {
    let n = 0;
    const restore = slowAdmission(t, () => waits[n++ % waits.length]!());
    const { socket, io } = await rawLogin(t.port, await t.token({ build: 'build-mp-pipe' }));
    try {
      for (let i = 0; i < 50; i++) {
        socket.write(Buffer.concat(batch));
        const out: string[] = [];
        for (const k of kinds) out.push(await answer(io, k));
        expect({ i, out }).toEqual({ i, out: expected });
      }
    } finally {
      restore();
      socket.end(packet(0, Buffer.from([0x01])));
    }
    expect(await ids()).toEqual([1, 2]);
  }

  it('queries, refusals interleaved', async () => {
    const batch = [
      query('SELECT 1'),
      query('DELETE FROM jit_mp_pipe'),
      query('SELECT 2'),
      query('TRUNCATE jit_mp_pipe'),
      query('DELETE FROM jit_mp_pipe'),
      query('SELECT 3'),
    ];
    await repeatedly(
      batch,
      batch.map(() => 'text'),
      ['ROWS:1', DENIED, 'ROWS:2', DENIED, DENIED, 'ROWS:3'],
    );
  });

  it('inside a transaction: a refusal leaves the transaction going, as an error on the server would', async () => {
    const batch = [
      query('BEGIN'),
      query('INSERT INTO jit_mp_pipe VALUES (3)'),
      query('DELETE FROM jit_mp_pipe'),
      query('SELECT COUNT(*) FROM jit_mp_pipe'),
      query('DELETE FROM jit_mp_pipe'),
      query('ROLLBACK'),
    ];
    await repeatedly(
      batch,
      batch.map(() => 'text'),
      ['OK', 'OK', DENIED, 'ROWS:3', DENIED, 'OK'],
    );
  });

  it('prepared statements: a refused PREPARE is not executed as "the statement prepared last"', async () => {
    const batch = [prepare('SELECT 7'), executeLast(), prepare('DELETE FROM jit_mp_pipe'), executeLast(), query('SELECT 8')];
    await repeatedly(
      batch,
      ['prepare', 'binary', 'prepare', 'binary', 'text'],
      ['PREPARED', 'ROWS:7', DENIED, 'ERR:1243:Unknown prepared statement handler (4294967295) given to mysqld_stmt_execute', 'ROWS:8'],
    );
  });
});
