// MySQL sessions replay with their rows: the sample of each result is what the client received — masked,
// within audit.sample_rows — whether it came as text rows (mysql2 query, the mariadb CLI) or binary rows
// (mysql2 execute), and the raw values of masked columns are nowhere in the store's files.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReplayEvent } from '../../../broker/audit/replay.js';
import type { ResultSample } from '../../../broker/types.js';
import { eventually, run } from '../../support/broker.js';
import { directMy, startMysqlBroker, type MysqlTestBroker } from '../../support/mysql.js';

const CONFIG = `
audit: { sample_rows: 2, sample_bytes: 65536 }
rules:
  - { id: reads, kinds: [read], action: allow }
default: deny
masking:
  rules:
    - { columns: ["jit_my_rp.email"], with: email }
    - { columns: ["jit_my_rp.secret"], with: redact }
`;

/** Values that must never reach the store: the masked columns' raw contents. */
const RAW = [
  'rawsecret-ann@example.com',
  'rawsecret-bob@example.net',
  'rawsecret-cy@example.org',
  'rawsecret-token-1',
  'rawsecret-token-2',
  'rawsecret-token-3',
];

let t: MysqlTestBroker;
beforeAll(async () => {
  t = await startMysqlBroker(CONFIG);
  await directMy((c) =>
    c.query(`DROP TABLE IF EXISTS jit_my_rp;
      CREATE TABLE jit_my_rp (id INT PRIMARY KEY, email VARCHAR(80), secret VARCHAR(40), amount DECIMAL(10,2), ratio DOUBLE, f FLOAT,
        created DATETIME(3), d DATE, span TIME, big BIGINT UNSIGNED, small TINYINT, y YEAR, bin VARBINARY(8), note VARCHAR(20));
      INSERT INTO jit_my_rp VALUES
        (1, '${RAW[0]}', '${RAW[3]}', 12.50, 0.1, 1.25, '2024-01-02 03:04:05.678', '2024-01-02', '-26:02:03', 18446744073709551615, -7, 2024, X'00ff10', 'héllo'),
        (2, '${RAW[1]}', '${RAW[4]}', -3.00, 2.5e100, -0.5, '2024-12-31 23:59:59.000', '1999-12-31', '00:00:01', 0, 127, 1999, X'', NULL),
        (3, '${RAW[2]}', '${RAW[5]}', 0.00, 0, 0, '2000-01-01 00:00:00.001', '2000-01-01', '838:59:59', 42, 0, 2000, NULL, 'x');`),
  );
});
afterAll(async () => {
  await t?.stop();
  await directMy((c) => c.query('DROP TABLE IF EXISTS jit_my_rp'));
});

/** The samples of one build's statements, in order, once every statement's outcome is recorded. */
async function samplesOf(build: string, count: number): Promise<{ sessionId: string; samples: (ResultSample | null)[] }> {
  const store = t.broker.store;
  return eventually(async () => {
    const [s] = await store.listSessions({ build });
    if (!s?.endedAt) return null;
    const st = await store.listStatements(s.id);
    if (st.length !== count || st.some((x) => x.durationMs === null)) return null;
    return { sessionId: s.id, samples: await Promise.all(st.map((x) => store.getSample(x.id))) };
  });
}

const SELECT = 'SELECT id, email, secret, note FROM jit_my_rp WHERE id >= ? ORDER BY id';
const MASKED_ROWS = [
  ['1', 'r***@e***.com', '****', 'héllo'],
  ['2', 'r***@e***.net', '****', null],
];
const COLUMNS = [
  { name: 'id', type: 'int' },
  { name: 'email', type: 'varchar' },
  { name: 'secret', type: 'varchar' },
  { name: 'note', type: 'varchar' },
];

describe('MySQL result samples', () => {
  it('mysql2, text and prepared statements: the rows the client saw, masked and bounded, in jit replay', async () => {
    const c = await t.connect(await t.token({ build: 'build-my-replay' }));
    const [text] = await c.query(SELECT.replace('?', '1'));
    const [binary] = await c.execute(SELECT, [1]);
    await c.end();
    const seen = [
      { id: 1, email: 'r***@e***.com', secret: '****', note: 'héllo' },
      { id: 2, email: 'r***@e***.net', secret: '****', note: null },
      { id: 3, email: 'r***@e***.org', secret: '****', note: 'x' },
    ];
    expect(text).toEqual(seen);
    expect(binary).toEqual(seen);
    const { sessionId, samples } = await samplesOf('build-my-replay', 2);
    const sample = { columns: COLUMNS, rows: MASKED_ROWS, truncated: true, bytes: 1 + 13 + 4 + 6 + 1 + 13 + 4 };
    expect(samples).toEqual([sample, sample]);

    const r = await run(process.execPath, ['bin/jit.js', '--config', t.configFile, 'replay', sessionId, '--json']);
    expect(r.stderr).toBe('');
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as ReplayEvent);
    const results = events.filter((e): e is Extract<ReplayEvent, { type: 'result' }> => e.type === 'result');
    expect(results.map((e) => [e.rows, e.sample])).toEqual([
      [3, sample],
      [3, sample],
    ]);
    const plain = await run(process.execPath, ['bin/jit.js', '--config', t.configFile, 'replay', sessionId]);
    expect(plain.stdout).toContain('r***@e***.com');
    expect(plain.stdout).toContain('… 1 more row');
  });

  it('binary rows (numbers, decimals, dates, times, binary strings) are sampled as the text protocol shows them', async () => {
    const c = await t.connect(await t.token({ build: 'build-my-replay-types' }));
    const all = 'SELECT id, amount, ratio, f, created, d, span, big, small, y, bin FROM jit_my_rp WHERE id >= ? ORDER BY id';
    await c.query(all.replace('?', '0'));
    await c.query(all.replace('?', '3'));
    await c.execute(all, [0]);
    await c.execute(all, [3]);
    await c.end();
    const { samples } = await samplesOf('build-my-replay-types', 4);
    expect(samples[2]).toEqual(samples[0]);
    expect(samples[3]).toEqual(samples[1]);
    expect(samples[0]!.rows).toEqual([
      ['1', '12.50', '0.1', '1.25', '2024-01-02 03:04:05.678', '2024-01-02', '-26:02:03', '18446744073709551615', '-7', '2024', '\\x00ff10'],
      ['2', '-3.00', '2.5e100', '-0.5', '2024-12-31 23:59:59.000', '1999-12-31', '00:00:01', '0', '127', '1999', '\\x'],
    ]);
    expect(samples[1]!.rows).toEqual([['3', '0.00', '0', '0', '2000-01-01 00:00:00.001', '2000-01-01', '838:59:59', '42', '0', '2000', null]]);
    expect(samples[0]!.columns.map((x) => x.type)).toEqual([
      'int',
      'decimal',
      'double',
      'float',
      'datetime',
      'date',
      'time',
      'bigint',
      'tinyint',
      'year',
      'varbinary',
    ]);
  });

  it('the mariadb CLI: the sample is what it printed, masked', async () => {
    const token = await t.token({ build: 'build-my-replay-cli' });
    const r = await t.cli(token, ['-N', '-B', 'app', '-e', 'SELECT id, email, secret, note FROM jit_my_rp ORDER BY id']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('1\tr***@e***.com\t****\théllo\n2\tr***@e***.net\t****\tNULL\n3\tr***@e***.org\t****\tx\n');
    const { samples } = await samplesOf('build-my-replay-cli', 1);
    expect(samples[0]).toMatchObject({ columns: COLUMNS, rows: MASKED_ROWS, truncated: true });
  });

  it('the raw values of masked columns are nowhere in the store', async () => {
    const dir = join(t.dir, '.jit');
    const files = readdirSync(dir).filter((f) => f.startsWith('jit.db'));
    expect(files).toContain('jit.db');
    const bytes = Buffer.concat(files.map((f) => readFileSync(join(dir, f))));
    expect(bytes.includes('r***@e***.com')).toBe(true); // the samples are there, masked
    for (const raw of RAW) expect(bytes.includes(raw)).toBe(false);
  });
});
