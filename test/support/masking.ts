import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { direct, psqlEnv, run, type RunResult, type TestBroker } from './broker.js';
import { pipelineMessages } from './pg-pipeline.js';

export const SETUP = `
DROP VIEW IF EXISTS jit_contact_emails, jit_customer_contacts;
DROP TABLE IF EXISTS jit_customers, jit_events CASCADE;
CREATE TABLE jit_customers (
  id int PRIMARY KEY, name text, email text, card_number text, ssn text, phone text, secret_note text,
  profile jsonb, contact_email varchar(100));
INSERT INTO jit_customers VALUES
  (1, 'Alice Martin', 'alice.martin@example.com', '4111 1111 1111 1111', '123-45-6789', '+1 415 555 0100', 'vip',
   '{"backup_email": "alice@home.example.org", "card": 4012888888881881}', 'alice.m@work.example.com'),
  (2, 'Bob Stone', 'bob.stone@example.net', '5500-0000-0000-0004', '234-56-7890', '+1 212 555 0199', 'late payer', '{"tier": "gold"}', NULL),
  (3, 'Carol Diaz', 'carol@example.org', '340000000000009', '345-67-8901', '+1 415 555 0100', NULL, NULL, 'carol@example.org');
CREATE VIEW jit_customer_contacts AS SELECT id, email AS contact, upper(name) AS shout FROM jit_customers;
CREATE VIEW jit_contact_emails AS SELECT id, contact FROM jit_customer_contacts;
CREATE TABLE jit_events (id int, note text, at date) PARTITION BY RANGE (at);
CREATE TABLE jit_events_2024 PARTITION OF jit_events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
INSERT INTO jit_events VALUES (1, 'called dave', '2024-05-01');
`;

export const TEARDOWN = 'DROP VIEW IF EXISTS jit_contact_emails, jit_customer_contacts; DROP TABLE IF EXISTS jit_customers, jit_events CASCADE';

/** Every raw PII value of the fixture: none may reach a masked client, whatever the query. */
export const PII = [
  'alice.martin@example.com',
  'alice@home.example.org',
  'alice.m@work.example.com',
  'bob.stone@example.net',
  'carol@example.org',
  '4111 1111 1111 1111',
  '5500-0000-0000-0004',
  '340000000000009',
  '4012888888881881',
  '123-45-6789',
  '234-56-7890',
  '345-67-8901',
  '+1 415 555 0100',
  '+1 212 555 0199',
];

export const MASKED = {
  email: ['a***@e***.com', 'b***@e***.net', 'c***@e***.org'],
  card: ['**** **** **** 1111', '****-****-****-0004', '***********0009'],
};

/** The spec's rules; `break-glass` (subjects oncall:*) reads unmasked; tokens of an `agent-*` workflow also get the `derived` rule. */
export const MASKING_CONFIG = `
rules:
  - { id: break-glass, subjects: ["oncall:*"], kinds: [read], action: allow, exempt_masking: true }
  - { id: day-to-day, kinds: [read, write, ddl], action: allow }
default: deny
masking:
  detectors:
    us_phone: '\\+1[ -]?[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{4}'
  rules:
    - { columns: ["jit_customers.email", "*.email"], with: email }
    - { columns: ["*.card_number", "*.pan"], with: partial, keep_last: 4 }
    - { columns: ["jit_customers.ssn"], with: redact }
    - { columns: ["*.phone"], with: hash }
    - { columns: ["public.jit_customers.secret_note"], with: null }
    - { columns: ["jit_events.note"], with: redact }
    - { columns: ["jit_customers.name"], with: redact, targets: ["other-*"] }
    - { columns: ["jit_customers.name"], with: partial, keep_first: 1, keep_last: 0, claims: { environment: support } }
    - { derived: true, with: redact, claims: { workflow: "agent-*" } }
    - { detect: [card, email, ssn, us_phone], with: redact }
`;

export const setup = () => direct((c) => c.query(SETUP));
export const teardown = () => direct((c) => c.query(TEARDOWN));

/** psql -At through the broker: rows as arrays of fields. */
export async function psqlRows(t: TestBroker, token: string, sql: string, extra: string[] = []): Promise<{ rows: string[][]; r: RunResult }> {
  const r = await run('psql', ['-X', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1', ...extra, '-c', sql], psqlEnv(t, token));
  const rows = r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('\t'));
  return { rows, r };
}

/** Send one pipelined batch of frontend messages over TLS and collect the answers up to its ReadyForQuery. */
export function pipeline(t: TestBroker, token: string, batch: Buffer[]): Promise<BackendMessage[]> {
  return pipelineMessages(t, token, batch);
}

/** Text fields of the DataRows among backend messages. */
export const dataRows = (ms: BackendMessage[]): (string | null)[][] =>
  ms.filter((m) => m.name === 'dataRow').map((m) => (m as unknown as { fields: (string | null)[] }).fields);
