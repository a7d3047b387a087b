// Masking without a server: maskers, detectors, the DataRow rewriter (text and binary values), the view
// node-tree reader, the upstream scanner under every split of its input, and the config block.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../broker/config.js';
import { builtinDetector, Detection, regexDetector } from '../../broker/masking/detectors.js';
import { hash, loadHashKey, maskEmail, masker, partial } from '../../broker/masking/maskers.js';
import { rewriteCopyData, rewriteDataRow, type RowPlan } from '../../broker/engines/postgres/datarow.js';
import { viewColumnOrigins } from '../../broker/engines/postgres/node-tree.js';
import { builtinKind } from '../../broker/engines/postgres/pg-values.js';
import { UpstreamScanner, type ScanTarget } from '../../broker/engines/postgres/scanner.js';

const dir = mkdtempSync(join(tmpdir(), 'jit-mask-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const redactAll = new Detection(['card', 'email', 'ssn'].map((n) => ({ detector: builtinDetector(n)!, masker: masker('redact') })));

describe('maskers', () => {
  it('email, partial, redact, null, hash', () => {
    expect(maskEmail('alice.martin@example.com')).toBe('a***@e***.com');
    expect(maskEmail(' bob@mail.example.co.uk ')).toBe('b***@m***.uk');
    expect(['not an email', '@x.com', 'a@b', 'a b@c.com'].map(maskEmail)).toEqual(['****', '****', '****', '****']);
    expect(partial(0, 4)('4111 1111 1111 1234')).toBe('**** **** **** 1234');
    expect(partial(0, 4)('5500-0000-0000-0004')).toBe('****-****-****-0004');
    expect(partial(1, 0)('Alice Martin')).toBe('A**** ******');
    expect(partial(0, 4)('1234')).toBe('****'); // too short to hide anything: all of it
    expect(masker('redact')('anything at all')).toBe('****');
    expect(masker('null')('x')).toBeNull();
    const h = hash(Buffer.from('k'.repeat(32)));
    expect(h('+1 415 555 0100')).toMatch(/^[0-9a-f]{16}$/);
    expect(h('+1 415 555 0100')).toBe(h('+1 415 555 0100'));
    expect(h('+1 415 555 0100')).not.toBe(hash(Buffer.from('other key'))('+1 415 555 0100'));
  });

  it('the hash key is generated once under data_dir (0600) and kept; a configured key wins', () => {
    const a = loadHashKey(dir);
    expect(statSync(join(dir, 'masking.key')).mode & 0o777).toBe(0o600);
    expect(loadHashKey(dir).equals(a)).toBe(true);
    expect(loadHashKey(dir, 'configured-key-0123456789').toString()).toBe('configured-key-0123456789');
  });
});

describe('detectors', () => {
  const find = (name: string, text: string) => {
    const out: string[] = [];
    builtinDetector(name)!.scan(text, (s, e) => out.push(text.slice(s, e)));
    return out;
  };

  it('cards: 13–19 digits, spaces or dashes, Luhn-checked, not inside a longer number', () => {
    expect(find('card', 'pay 4111 1111 1111 1111 now, or 5500-0000-0000-0004; amex 340000000000009')).toEqual([
      '4111 1111 1111 1111',
      '5500-0000-0000-0004',
      '340000000000009',
    ]);
    expect(find('card', '4111 1111 1111 1112')).toEqual([]); // Luhn fails
    expect(find('card', '411111111111')).toEqual([]); // 12 digits
    expect(find('card', '41111111111111111111')).toEqual([]); // 20 digits: none of it is a card on its own terms
    expect(find('card', 'order 2024-01-15 10:30')).toEqual([]);
  });

  it('e-mail addresses, found linearly from each @', () => {
    expect(find('email', 'to: alice.martin@example.com, "bob+x@mail.example.org"; not@this or @that.com')).toEqual([
      'alice.martin@example.com',
      'bob+x@mail.example.org',
    ]);
    expect(find('email', `${'a'.repeat(200_000)}@`)).toEqual([]); // no backtracking blow-up
  });

  it('SSNs: ddd-dd-dddd outside the never-issued ranges', () => {
    expect(find('ssn', '123-45-6789 234-56-7890')).toEqual(['123-45-6789', '234-56-7890']);
    expect(find('ssn', '000-12-3456 666-12-3456 912-12-3456 123-00-4567 123-45-0000 1123-45-6789')).toEqual([]);
  });

  it('replaces only what was found; JSON numbers become JSON strings; a null masker nulls the value', () => {
    expect(redactAll.apply('mail alice@example.com, card 4111-1111-1111-1111.')).toBe('mail ****, card ****.');
    expect(redactAll.apply('nothing here')).toBeUndefined();
    expect(redactAll.apply('{"card": 4012888888881881, "e": "x alice@example.com", "n": "4111111111111111"}', true)).toBe(
      '{"card": "****", "e": "x ****", "n": "****"}',
    );
    const nulling = new Detection([{ detector: builtinDetector('ssn')!, masker: masker('null') }]);
    expect(nulling.apply('ssn 123-45-6789')).toBeNull();
    expect(nulling.apply('ssn 123-45-6789', false, '****')).toBe('ssn ****');
    const custom = new Detection([{ detector: regexDetector('emp', 'EMP-[0-9]{6}'), masker: masker('partial', { keepLast: 2 }) }]);
    expect(custom.apply('EMP-123456 and EMP-654321')).toBe('***-****56 and ***-****21'); // dashes stay, as in card numbers
  });
});

/** A DataRow message from field values (null: SQL NULL). */
function dataRow(fields: (string | Buffer | null)[]): Buffer {
  const parts = fields.map((f) => {
    if (f === null) return Buffer.from([0xff, 0xff, 0xff, 0xff]);
    const b = typeof f === 'string' ? Buffer.from(f) : f;
    const len = Buffer.alloc(4);
    len.writeInt32BE(b.length);
    return Buffer.concat([len, b]);
  });
  const count = Buffer.alloc(2);
  count.writeInt16BE(fields.length);
  const body = Buffer.concat([count, ...parts]);
  const head = Buffer.alloc(5);
  head[0] = 0x44;
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

/** A binary one-dimensional array of `oid` elements. */
function binaryArray(oid: number, elems: string[]): Buffer {
  const head = Buffer.alloc(20);
  head.writeInt32BE(1, 0);
  head.writeInt32BE(0, 4);
  head.writeUInt32BE(oid, 8);
  head.writeInt32BE(elems.length, 12);
  head.writeInt32BE(1, 16);
  return Buffer.concat([head, ...elems.map((e) => dataRow([e]).subarray(7))]);
}

describe('DataRow rewriter', () => {
  const col = (o: Partial<RowPlan['columns'][number] & object>) => ({ masker: null, detect: false, kind: 'text' as const, binary: false, ...o });
  const plan = (columns: RowPlan['columns']): RowPlan => ({ columns, detection: redactAll, kinds: (oid) => builtinKind(oid) ?? 'unknown' });

  it('re-frames the row with the new lengths; untouched rows are not copied (null)', () => {
    const row = dataRow(['1', 'alice.martin@example.com', null, 'hello']);
    const p = plan([null, col({ masker: maskEmail }), col({ masker: masker('redact') }), col({ detect: true })]);
    const out = rewriteDataRow(p, row)!;
    expect(out).toEqual(dataRow(['1', 'a***@e***.com', null, 'hello']));
    expect(out.readInt32BE(1)).toBe(out.length - 1);
    expect(rewriteDataRow(plan([null, null, null, col({ detect: true })]), row)).toBeNull();
  });

  it('types that cannot hold the masked text become NULL; json keeps being JSON; jsonb binary keeps its version byte', () => {
    const p = plan([
      col({ masker: masker('partial'), kind: 'opaque' }),
      col({ masker: maskEmail, kind: 'json' }),
      col({ detect: true, kind: 'jsonb', binary: true }),
    ]);
    const out = rewriteDataRow(p, dataRow(['4111111111111111', '"alice@example.com"', Buffer.from('\u0001{"e": "bob@example.org"}')]));
    expect(out).toEqual(dataRow([null, '"a***@e***.com"', Buffer.from('\u0001{"e": "****"}')]));
  });

  it('bytea (hex text and raw binary), binary text[] arrays and records are looked into', () => {
    const hex = `\\x${Buffer.from('mail bob@example.org').toString('hex')}`;
    const rec = Buffer.concat([
      Buffer.from([0, 0, 0, 2, 0, 0, 0, 25]),
      dataRow(['Alice']).subarray(7),
      Buffer.from([0, 0, 0, 25]),
      dataRow(['123-45-6789']).subarray(7),
    ]);
    const p = plan([
      col({ detect: true, kind: 'bytea' }),
      col({ detect: true, kind: 'bytea', binary: true }),
      col({ detect: true, kind: 'array', binary: true }),
      col({ detect: true, kind: 'record', binary: true }),
    ]);
    const out = rewriteDataRow(p, dataRow([hex, 'x alice@example.com', binaryArray(25, ['a@example.com', 'fine']), rec]))!;
    const wantRec = Buffer.concat([
      Buffer.from([0, 0, 0, 2, 0, 0, 0, 25]),
      dataRow(['Alice']).subarray(7),
      Buffer.from([0, 0, 0, 25]),
      dataRow(['****']).subarray(7),
    ]);
    expect(out).toEqual(dataRow([`\\x${Buffer.from('mail ****').toString('hex')}`, 'x ****', binaryArray(25, ['****', 'fine']), wantRec]));
  });

  it('COPY rows: detectors over the row text', () => {
    const d = Buffer.concat([Buffer.from('d\0\0\0\0'), Buffer.from('1\tAlice\talice@example.com\n')]);
    d.writeInt32BE(d.length - 1, 1);
    const out = rewriteCopyData(redactAll, d)!;
    expect(out.subarray(5).toString()).toBe('1\tAlice\t****\n');
    expect(out.readInt32BE(1)).toBe(out.length - 1);
  });
});

describe('view origins (pg_node_tree)', () => {
  it('reads resorigtbl/resorigcol of the top-level target list only, escapes and junk included', () => {
    const tree =
      '({QUERY :commandType 1 :rtable ({RANGETBLENTRY :eref {ALIAS :aliasname v :colnames ("a\\{b")} :subquery {QUERY :targetList ({TARGETENTRY :resno 1 :resorigtbl 999 :resorigcol 9 :resjunk false})}}) ' +
      ':targetList ({TARGETENTRY :expr {VAR :varno 1 :varattno 2} :resno 1 :resname a\\{b :resorigtbl 16390 :resorigcol 2 :resjunk false} ' +
      '{TARGETENTRY :expr {FUNCEXPR :args ({TARGETENTRY :resno 7 :resorigtbl 5 :resorigcol 5})} :resno 2 :resname l :resorigtbl 0 :resorigcol 0 :resjunk false} ' +
      '{TARGETENTRY :expr {VAR} :resno 3 :resname x :resorigtbl 16390 :resorigcol 1 :resjunk true}) :override 0})';
    expect([...viewColumnOrigins(tree)]).toEqual([
      [1, [16390, 2]],
      [2, [0, 0]],
    ]);
  });
});

describe('upstream scanner', () => {
  const msg = (type: string, body: string) => {
    const b = Buffer.alloc(5 + Buffer.byteLength(body));
    b[0] = type.charCodeAt(0);
    b.writeInt32BE(4 + Buffer.byteLength(body), 1);
    b.write(body, 5);
    return b;
  };
  const stream = [msg('T', 'desc'), msg('D', 'row secret 1'), msg('D', 'row 2'), msg('N', 'notice'), msg('D', 'secret 3'), msg('C', 'SELECT 3')];
  const input = Buffer.concat(stream);
  const expected = Buffer.concat(stream.map((m) => (m.includes('secret') ? msg('D', m.subarray(5).toString().replace('secret', 'XX')) : m)));

  /** Feed `input` cut at the given offsets; 'T' waits for a promise; D rows with "secret" are rewritten. */
  async function feed(cuts: number[], wait: boolean): Promise<Buffer> {
    const out: Buffer[] = [];
    let release: () => void = () => {};
    const target: ScanTarget = {
      wants: (t) => t === 'D' || t === 'T',
      inspect: (t, m) => {
        const body = m.subarray(5);
        if (t === 'T') return wait ? new Promise((r) => (release = () => r(null))) : null;
        return body.includes('secret') ? msg('D', body.toString().replace('secret', 'XX')) : null;
      },
      toClient: (b) => out.push(Buffer.from(b)),
      pauseUpstream: () => {},
      resumeUpstream: () => {},
      fail: (e) => {
        throw e;
      },
    };
    const s = new UpstreamScanner(target);
    let prev = 0;
    for (const c of [...cuts, input.length]) {
      s.scan(input.subarray(prev, c));
      prev = c;
      release();
      await Promise.resolve();
    }
    release();
    await new Promise((r) => setImmediate(r));
    return Buffer.concat(out);
  }

  it('forwards the same bytes, rows rewritten, whatever the reads are cut into (and while it waits)', async () => {
    for (let a = 1; a < input.length; a++) {
      for (const b of [a + 1, a + 3, a + 7].filter((x) => x < input.length)) {
        for (const wait of [false, true]) expect((await feed([a, b], wait)).equals(expected), `cuts ${a},${b} wait ${wait}`).toBe(true);
      }
    }
    expect((await feed([], false)).equals(expected)).toBe(true);
    expect(
      (
        await feed(
          Array.from({ length: input.length - 1 }, (_, i) => i + 1),
          true,
        )
      ).equals(expected),
    ).toBe(true);
  });
});

describe('config', () => {
  const MIN = 'targets: { app: { engine: postgres, upstream: demo } }\n';
  const problems = (yaml: string): string[] => {
    try {
      parseConfig(MIN + yaml, { file: null, baseDir: dir, env: {} });
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as ConfigError).problems;
    }
    return [];
  };

  it('accepts the spec’s block (a list, `with: null` included) and the object form', () => {
    expect(
      problems(
        'masking:\n  - { columns: ["customers.email", "*.email"], with: email }\n  - { columns: ["*.x"], with: null }\n  - { detect: [card], with: redact }\n',
      ),
    ).toEqual([]);
    expect(problems('masking: { detectors: { emp: "EMP-[0-9]+" }, rules: [{ detect: [emp], with: hash }], hash_key: "0123456789abcdef" }\n')).toEqual([]);
  });

  it('names what is wrong', () => {
    expect(problems('masking:\n  - { columns: [email], with: email }\n')[0]).toMatch(/masking.rules\[0\].columns\[0\]: a column is table.column/);
    expect(problems('masking:\n  - { columns: ["t.c"], detect: [card], with: email }\n')[0]).toMatch(/exactly one of columns, detect, derived/);
    expect(problems('masking:\n  - { detect: [iban], with: redact }\n')[0]).toMatch(/unknown detector 'iban'/);
    expect(problems('masking:\n  - { columns: ["t.c"], with: redact, keep_last: 2 }\n')[0]).toMatch(/keep_last \/ keep_first go with `with: partial`/);
    expect(problems('masking: { detectors: { bad: "(" } }\n')[0]).toMatch(/masking.detectors.bad: not a usable regular expression/);
    expect(problems('masking: { detectors: { empty: "x*" } }\n')[0]).toMatch(/matches the empty string/);
    expect(problems('masking:\n  - { columns: ["t.c"], with: blur }\n')[0]).toMatch(/masking.rules\[0\].with/);
    expect(problems('masking:\n  - { columns: ["t.c"], with: redact, targets: [nope] }\n')[0]).toMatch(/unknown target 'nope'/);
    expect(problems('rules:\n  - { id: r, action: deny, exempt_masking: true }\n')[0]).toMatch(/exempt_masking applies to allow and review rules/);
  });
});
