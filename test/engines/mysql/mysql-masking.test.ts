// Masking through the MySQL engine: mysql2 text queries (COM_QUERY) and prepared statements (COM_STMT_EXECUTE,
// binary rows), and the mariadb CLI, against the real MariaDB.
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directMy, startMysqlBroker, type MysqlTestBroker } from '../../support/mysql.js';

const CONFIG = `
rules:
  - { id: break-glass, subjects: ["oncall:*"], kinds: [read], action: allow, exempt_masking: true }
  - { id: day-to-day, kinds: [read, write], action: allow }
default: deny
masking:
  rules:
    - { columns: ["*.email"], with: email }
    - { columns: ["jit_m_customers.id"], with: redact, subjects: ["ci:idmask"] }
    - { detect: [email, card], with: redact }
`;

let t: MysqlTestBroker;
beforeAll(async () => {
  t = await startMysqlBroker(CONFIG);
  await directMy((c) =>
    c.query(`DROP TABLE IF EXISTS jit_m_customers;
      CREATE TABLE jit_m_customers (id INT PRIMARY KEY, email VARCHAR(100), card VARCHAR(32), note VARCHAR(40));
      INSERT INTO jit_m_customers VALUES (1, 'alice@example.com', '4111111111111111', 'call me'),
        (2, 'bob@example.net', '5500-0000-0000-0004', NULL), (3, NULL, 'none', 'mail carol@example.org now');`),
  );
});
afterAll(async () => {
  await t?.stop();
  await directMy((c) => c.query('DROP TABLE IF EXISTS jit_m_customers'));
});

async function withConn<T>(fn: (c: mysql.Connection) => Promise<T>, subject?: string): Promise<T> {
  const c = await t.connect(await t.token({ build: 'build-my-mask', ...(subject ? { subject } : {}) }));
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const MASKED = [
  { id: 1, email: 'a***@e***.com', card: '****', note: 'call me' },
  { id: 2, email: 'b***@e***.net', card: '****', note: null },
  { id: 3, email: null, card: 'none', note: 'mail **** now' },
];

describe('mysql2', () => {
  it('text protocol: column rule, detectors, aliases and expressions', async () => {
    await withConn(async (c) => {
      const [rows] = await c.query('SELECT id, email, card, note FROM jit_m_customers ORDER BY id');
      expect(rows).toEqual(MASKED);
      const [alias] = await c.query('SELECT email AS e FROM jit_m_customers WHERE id = 1');
      expect(alias).toEqual([{ e: 'a***@e***.com' }]);
      const [expr] = await c.query("SELECT CONCAT(email, '') AS x, UPPER(card) AS y, 42 AS n FROM jit_m_customers WHERE id = 2");
      expect(expr).toEqual([{ x: '****', y: '****', n: 42 }]);
      const [qualified] = await c.query('SELECT c.email FROM test.jit_m_customers c WHERE id = 2');
      expect(qualified).toEqual([{ email: 'b***@e***.net' }]);
    });
  });

  it('binary protocol (prepared statements): the same values', async () => {
    await withConn(async (c) => {
      const [rows] = await c.execute('SELECT id, email, card, note FROM jit_m_customers WHERE id >= ? ORDER BY id', [1]);
      expect(rows).toEqual(MASKED);
      const [alias] = await c.execute('SELECT email AS e, CONCAT(email, ?) AS x FROM jit_m_customers WHERE id = ?', ['', 1]);
      expect(alias).toEqual([{ e: 'a***@e***.com', x: '****' }]);
      // Fixed-size and date values before the masked ones are stepped over, not misread.
      const [mixed] = await c.execute(
        "SELECT CAST('2024-01-02 03:04:05' AS DATETIME) AS d, 1.5e0 AS f, CAST(7 AS SIGNED) AS n, email, card FROM jit_m_customers WHERE id = ?",
        [1],
      );
      const m = (mixed as Record<string, unknown>[])[0]!;
      expect(m.d).toBeInstanceOf(Date);
      expect({ f: m.f, n: m.n, email: m.email, card: m.card }).toEqual({ f: 1.5, n: 7, email: 'a***@e***.com', card: '****' });
    });
  });

  it('a column rule on a number column sends NULL (binary and text)', async () => {
    await withConn(async (c) => {
      const [bin] = await c.execute('SELECT id, email FROM jit_m_customers WHERE id = ?', [2]);
      expect(bin).toEqual([{ id: null, email: 'b***@e***.net' }]);
      const [text] = await c.query('SELECT id, note FROM jit_m_customers WHERE id = 1');
      expect(text).toEqual([{ id: null, note: 'call me' }]);
    }, 'ci:idmask');
  });

  it('exempt_masking: a break-glass rule leaves its statements unmasked', async () => {
    await withConn(async (c) => {
      const [rows] = await c.query('SELECT email, card FROM jit_m_customers WHERE id = 1');
      expect(rows).toEqual([{ email: 'alice@example.com', card: '4111111111111111' }]);
      const [bin] = await c.execute('SELECT email FROM jit_m_customers WHERE id = ?', [2]);
      expect(bin).toEqual([{ email: 'bob@example.net' }]);
    }, 'oncall:alice');
  });
});

describe('the mariadb CLI', () => {
  it('-e shows masked values', async () => {
    const token = await t.token({ build: 'build-my-mask-cli' });
    const r = await t.cli(token, ['-N', '-B', 'app', '-e', 'SELECT email, card FROM jit_m_customers ORDER BY id']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('a***@e***.com\t****\nb***@e***.net\t****\nNULL\tnone\n');
  });
});
