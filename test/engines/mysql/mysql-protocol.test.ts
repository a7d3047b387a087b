// The MySQL engine's wire machinery without a broker around it: the upstream scanner under every split of
// its input, the masking seam (rows rewritten and re-framed), masking and result samples (text and binary
// protocol, through a live engine against the real MariaDB), and the small parsers (USE, KILL).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMysqlEngine, type MysqlEngine, type ResultSetContext } from '../../../broker/engines/mysql/index.js';
import { MaskingPolicy } from '../../../broker/masking/index.js';
import { lenencBytes, lenencInt, MAX_PACKET, packet } from '../../../broker/engines/mysql/protocol.js';
import { outcome, Responses, STREAM_MIN, type Outcome } from '../../../broker/engines/mysql/responses.js';
import { MysqlResultTap } from '../../../broker/engines/mysql/sample.js';
import { ResultSampler } from '../../../broker/audit/sampler.js';
import { readTextRow, writeTextRow, type RowRewriter } from '../../../broker/engines/mysql/results.js';
import { UpstreamScanner } from '../../../broker/engines/mysql/scanner.js';
import { parseKill, useDatabase } from '../../../broker/engines/mysql/scope.js';
import { BrokerSession } from '../../../broker/session.js';
import { openStore, type Store } from '../../../broker/store/index.js';
import type { Identity } from '../../../broker/types.js';
import { eventually } from '../../support/broker.js';
import { directMy, MYSQL_UPSTREAM, rawLogin } from '../../support/mysql.js';
import mysql from 'mysql2/promise';

const str = (s: string) => lenencBytes(Buffer.from(s));
const column = (name: string) =>
  Buffer.concat([str('def'), str('test'), str('t'), str('t'), str(name), str(name), lenencInt(0x0c), Buffer.from([45, 0, 80, 0, 0, 0, 0xfd, 0, 0, 0, 0, 0])]);
const eof = (status = 0x0002) => Buffer.from([0xfe, 0, 0, status & 0xff, status >> 8]);

/** A text result set as a server sends it: column count, definitions, EOF, rows, EOF. */
function resultSet(rows: Buffer[]): Buffer {
  let seq = 1;
  const parts = [packet(seq++, Buffer.from([2])), packet(seq++, column('a')), packet(seq++, column('b')), packet(seq++, eof())];
  for (const r of rows) {
    parts.push(packet(seq, r));
    seq += Math.floor(r.length / MAX_PACKET) + 1;
  }
  parts.push(packet(seq, eof()));
  return Buffer.concat(parts);
}

function harness(rewriter: RowRewriter | null = null, sampling: { rows: number; bytes: number } | null = null) {
  const out: Buffer[] = [];
  const finished: Outcome[] = [];
  const seen: ResultSetContext[] = [];
  const responses = new Responses({
    finish: (o) => finished.push(o),
    prepared: () => {},
    infile: () => {},
    status: () => {},
    resultSet: rewriter
      ? (ctx) => {
          seen.push(ctx);
          return rewriter;
        }
      : undefined,
    sample: () => (sampling ? new MysqlResultTap(new ResultSampler(sampling), 'utf8') : null),
  });
  responses.push({ kind: 'result', format: 'text', sql: 'SELECT a, b FROM t', decision: null, out: outcome(1), stmt: null });
  const scanner = new UpstreamScanner(responses, (b) => out.push(b));
  return { scan: (b: Buffer) => scanner.scan(b), output: () => Buffer.concat(out), finished, seen, responses };
}

/** Sequence ids of a packet stream, checking that its lengths add up. */
function sequenceIds(b: Buffer): number[] {
  const ids: number[] = [];
  for (let i = 0; i < b.length; ) {
    ids.push(b[i + 3]!);
    i += 4 + b.readUIntLE(i, 3);
    expect(i).toBeLessThanOrEqual(b.length);
  }
  return ids;
}

describe('the upstream scanner', () => {
  const rows = [writeTextRow([Buffer.from('x'), null]), writeTextRow([Buffer.from('hello'), Buffer.from('world')])];
  const input = resultSet(rows);

  it('forwards a response unchanged and counts its rows, however the reads split it', () => {
    for (let a = 0; a <= input.length; a++) {
      for (const b of [a, Math.min(input.length, a + 1), Math.min(input.length, a + 7)]) {
        const h = harness();
        h.scan(input.subarray(0, a));
        h.scan(input.subarray(a, b));
        h.scan(input.subarray(b));
        expect(h.output().equals(input)).toBe(true);
        expect(h.finished).toEqual([expect.objectContaining({ rows: 2, resultSets: 1, parts: ['2 rows'], error: null })]);
      }
    }
  });

  it('hands each row to a rewriter with the parsed columns, and re-frames what it returns', () => {
    const upper: RowRewriter = (row) => writeTextRow(readTextRow(row, 2).map((v) => (v ? Buffer.from(v.toString().toUpperCase()) : v)));
    const expected = resultSet(rows.map(upper));
    for (let a = 0; a <= input.length; a++) {
      const h = harness(upper);
      h.scan(input.subarray(0, a));
      h.scan(input.subarray(a));
      expect(h.output().equals(expected)).toBe(true);
      expect(h.seen[0]!.columns.map((c) => [c.schema, c.orgTable, c.orgName, c.type])).toEqual([
        ['test', 't', 'a', 0xfd],
        ['test', 't', 'b', 0xfd],
      ]);
    }
  });

  it('streams a row of more than 16 MiB (several packets) untouched, and renumbers packets after a rewritten one', () => {
    const big = writeTextRow([Buffer.alloc(MAX_PACKET + 100, 0x61), Buffer.from('z')]);
    const input2 = resultSet([big, rows[0]!]);
    const h = harness();
    for (let i = 0; i < input2.length; i += 65536) h.scan(input2.subarray(i, i + 65536));
    expect(h.output().equals(input2)).toBe(true);
    expect(h.finished[0]).toMatchObject({ rows: 2 });
    // A rewriter that shrinks the big row to one packet: every later sequence id moves back by one.
    const shrink = harness((row) => (row.length > 1000 ? writeTextRow([Buffer.from('masked'), null]) : row));
    for (let i = 0; i < input2.length; i += 65536) shrink.scan(input2.subarray(i, i + 65536));
    expect(sequenceIds(shrink.output())).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(shrink.finished[0]).toMatchObject({ rows: 2 });
  });

  it('samples the rows as sent (after the rewriter): a long first row is read and cut, later ones stream once the sample is complete', () => {
    const big = writeTextRow([Buffer.alloc(STREAM_MIN * 2, 0x61), Buffer.from('z')]);
    const input3 = resultSet([big, rows[0]!, big, rows[1]!]);
    for (const rewriter of [null, (row: Buffer) => (row.length > 1000 ? row : writeTextRow([Buffer.from('X'), null]))]) {
      const h = harness(rewriter, { rows: 10, bytes: 100 });
      for (let i = 0; i < input3.length; i += 4096) h.scan(input3.subarray(i, i + 4096));
      expect(h.finished[0]).toMatchObject({ rows: 4 });
      expect(h.finished[0]!.sample!.done()).toEqual({
        columns: [
          { name: 'a', type: 'varchar' },
          { name: 'b', type: 'varchar' },
        ],
        rows: [[`${'a'.repeat(100)}…`, '…']],
        truncated: true,
        bytes: 100,
      });
    }
    // Without a rewriter, the output is the input: the sample never changes what is sent.
    const h = harness(null, { rows: 1, bytes: 100 });
    h.scan(input);
    expect(h.output().equals(input)).toBe(true);
    expect(h.finished[0]!.sample!.done()).toMatchObject({ rows: [['x', null]], truncated: true });
  });
});

describe('masking and result samples, live', () => {
  let store: Store;
  let engine: MysqlEngine;
  const identity: Identity = {
    subject: 'ci:mask',
    issuer: 'test',
    build: 'b',
    claims: {},
    actors: [],
    tokenId: null,
    expiresAt: new Date(Date.now() + 60_000),
  };
  let sessionId = '';

  beforeAll(async () => {
    await directMy((c) =>
      c.query(
        "DROP TABLE IF EXISTS jit_my_mask; CREATE TABLE jit_my_mask (id INT, email VARCHAR(40)); INSERT INTO jit_my_mask VALUES (1, 'ann@example.com'), (2, NULL)",
      ),
    );
    store = await openStore('sqlite::memory:');
    engine = await startMysqlEngine(
      {
        targets: new Map([['app', { name: 'app', engine: 'mysql', upstream: MYSQL_UPSTREAM }]]),
        verify: async (token) => {
          if (token !== 'let-me-in') throw new Error('token refused: malformed');
          return identity;
        },
        openSession: async (id, target, client) => {
          const s = await BrokerSession.open({ store, policy: { rules: [], default: 'allow' }, sampling: { rows: 10, bytes: 1000 } }, id, target, client);
          sessionId = s.id;
          return s;
        },
        // Masking reaches the engine as it reaches the Postgres one: the broker's rules, each session's taken by the engine.
        masking: MaskingPolicy.create({ rules: [{ columns: ['jit_my_mask.email'], with: 'redact' }], detectors: {} }, { dataDir: '/nonexistent' }),
        tls: null,
        plaintext: 'loopback',
        maxMessageBytes: 1 << 24,
        log: () => {},
      },
      { host: '127.0.0.1', port: 0 },
    );
  });
  afterAll(async () => {
    await engine?.close();
    await store?.close();
    await directMy((c) => c.query('DROP TABLE IF EXISTS jit_my_mask'));
  });

  it('rewrites text rows (COM_QUERY) and binary rows (COM_STMT_EXECUTE) of the masked column only, and samples them as sent', async () => {
    const c = await mysql.createConnection({
      host: '127.0.0.1',
      port: engine.address.port,
      user: 'ci',
      password: 'let-me-in',
      database: 'app',
      enableCleartextPlugin: true,
    });
    try {
      expect((await c.query('SELECT id, email FROM jit_my_mask ORDER BY id'))[0]).toEqual([
        { id: 1, email: '****' },
        { id: 2, email: null },
      ]);
      expect((await c.execute('SELECT id, email AS e FROM jit_my_mask WHERE id = ?', [1]))[0]).toEqual([{ id: 1, e: '****' }]);
      expect((await c.query('SELECT 1 AS one'))[0]).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
    const statements = await eventually(async () => {
      const st = await store.listStatements(sessionId);
      return st.length === 3 && st.every((x) => x.durationMs !== null) ? st : null;
    });
    const samples = await Promise.all(statements.map((x) => store.getSample(x.id)));
    expect(samples).toEqual([
      {
        columns: [
          { name: 'id', type: 'int' },
          { name: 'email', type: 'varchar' },
        ],
        rows: [
          ['1', '****'],
          ['2', null],
        ],
        truncated: false,
        bytes: 6,
      },
      {
        columns: [
          { name: 'id', type: 'int' },
          { name: 'e', type: 'varchar' },
        ],
        rows: [['1', '****']],
        truncated: false,
        bytes: 5,
      },
      expect.objectContaining({ columns: [expect.objectContaining({ name: 'one' })], rows: [['1']] }),
    ]);
  });
});

describe('prepared statements on the wire', () => {
  let store: Store;
  let engine: MysqlEngine;
  const identity: Identity = { subject: 'ci:raw', issuer: 'test', build: 'b', claims: {}, actors: [], tokenId: null, expiresAt: new Date(Date.now() + 60_000) };
  let sessionId = '';
  beforeAll(async () => {
    await directMy((c) => c.query('DROP TABLE IF EXISTS jit_my_cur; CREATE TABLE jit_my_cur (id INT); INSERT INTO jit_my_cur VALUES (1), (2), (3)'));
    store = await openStore('sqlite::memory:');
    engine = await startMysqlEngine(
      {
        targets: new Map([['app', { name: 'app', engine: 'mysql', upstream: MYSQL_UPSTREAM }]]),
        verify: async () => identity,
        openSession: async (id, target, client) => {
          const s = await BrokerSession.open({ store, policy: { rules: [], default: 'allow' } }, id, target, client);
          sessionId = s.id;
          return s;
        },
        tls: null,
        plaintext: 'loopback',
        maxMessageBytes: 1 << 24,
        log: () => {},
      },
      { host: '127.0.0.1', port: 0 },
    );
  });
  afterAll(async () => {
    await engine?.close();
    await store?.close();
    await directMy((c) => c.query('DROP TABLE IF EXISTS jit_my_cur'));
  });

  it('a cursor (EXECUTE with CURSOR_TYPE_READ_ONLY, then FETCH), and MariaDB\'s "last prepared" id 0xffffffff', async () => {
    const { socket, io } = await rawLogin(engine.address.port, 'any');
    const readUntilEof = async (eofs: number) => {
      const got: Buffer[] = [];
      while (eofs > 0) {
        const m = await io.read();
        got.push(m.payload);
        if (m.payload[0] === 0xfe && m.payload.length < 9) eofs--;
        if (m.payload[0] === 0xff) throw new Error(m.payload.toString('utf8', 9));
      }
      return got;
    };
    socket.write(packet(0, Buffer.from('\x16SELECT id FROM jit_my_cur ORDER BY id')));
    const prep = await io.read();
    expect(prep.payload[0]).toBe(0x00);
    const id = prep.payload.readUInt32LE(1);
    await readUntilEof(1); // one column definition, EOF
    const exec = (stmt: number, flags: number) => {
      const b = Buffer.alloc(10);
      b[0] = 0x17;
      b.writeUInt32LE(stmt, 1);
      b[5] = flags;
      b.writeUInt32LE(1, 6); // iteration count
      return b;
    };
    socket.write(packet(0, exec(id, 0x01)));
    const opened = await readUntilEof(1); // column count, definition, EOF with SERVER_STATUS_CURSOR_EXISTS
    expect(opened[opened.length - 1]!.readUInt16LE(3) & 0x40).toBe(0x40);
    const fetch = Buffer.alloc(9);
    fetch[0] = 0x1c;
    fetch.writeUInt32LE(id, 1);
    fetch.writeUInt32LE(2, 5); // rows
    socket.write(packet(0, fetch));
    expect((await readUntilEof(1)).length).toBe(3); // two binary rows, EOF
    socket.write(packet(0, exec(0xffffffff, 0)));
    const all = await readUntilEof(2); // column count, definition, EOF, three rows, EOF
    expect(all.filter((p) => p[0] === 0x00).length).toBe(3);
    socket.write(packet(0, Buffer.from([0x01])));
    socket.end();
    const st = await eventually(async () => {
      const rows = await store.listStatements(sessionId);
      return rows.length === 2 && rows.every((r) => r.tag) ? rows : null;
    });
    expect(st.map((x) => [x.protocol, x.sql, x.tag])).toEqual([
      ['execute', 'SELECT id FROM jit_my_cur ORDER BY id', 'cursor opened'],
      ['execute', 'SELECT id FROM jit_my_cur ORDER BY id', '3 rows'],
    ]);
  });
});

describe('parsers', () => {
  it('USE statements, as the classifier splits them', () => {
    expect(useDatabase('USE test')).toBe('test');
    expect(useDatabase('use/**/`my``db` ;')).toBe('my`db');
    expect(useDatabase('/* c */ USE -- x\n mysql')).toBe('mysql');
    expect(useDatabase('SELECT 1')).toBeUndefined();
    expect(useDatabase('user_defined()')).toBeUndefined();
    expect(useDatabase('USE a b')).toBeNull();
    expect(useDatabase('USE `unterminated')).toBeNull();
  });

  it('KILL forms the broker handles itself; others are left to policy', () => {
    expect(parseKill('KILL 5')).toEqual({ scope: 'CONNECTION', id: 5 });
    expect(parseKill(' kill query 17;')).toEqual({ scope: 'QUERY', id: 17 });
    expect(parseKill('KILL HARD CONNECTION 3')).toEqual({ scope: 'CONNECTION', id: 3 });
    expect(parseKill('KILL QUERY ID 3')).toBeNull();
    expect(parseKill('KILL USER bob')).toBeNull();
    expect(parseKill('KILL /*x*/ 5')).toBeNull();
  });
});
