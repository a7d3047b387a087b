// A raw PostgreSQL connection to the broker for pipelined batches: each batch goes out in one write, and
// the answers are collected, as short strings, up to a given number of ReadyForQuery.
import net from 'node:net';
import tls from 'node:tls';
import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import type { TestBroker } from './broker.js';

export interface PipelineConnection {
  /** Send `batch` in one write; the answers up to the `readies`-th ReadyForQuery after it. */
  send(batch: Buffer[], readies: number): Promise<string[]>;
  /** The same, as the parsed messages themselves. */
  messages(batch: Buffer[], readies: number): Promise<BackendMessage[]>;
  close(): void;
}

/** Log in over TLS with `token` (user ci, database app) and wait for the first ReadyForQuery. */
export async function openPipeline(t: TestBroker, token: string): Promise<PipelineConnection> {
  const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const raw = new net.Socket();
    raw.connect(t.port, t.host, () => raw.write(serialize.requestSsl()));
    raw.once('data', (d: Buffer) => {
      if (d.toString() !== 'S') return reject(new Error('no TLS'));
      const s = tls.connect({ socket: raw, rejectUnauthorized: false }, () => resolve(s));
    });
    raw.once('error', reject);
  });
  const parser = new Parser();
  let messages: BackendMessage[] = [];
  let wanted = 1;
  let settle: { resolve: (m: BackendMessage[]) => void; reject: (e: Error) => void } | null = null;
  const answered = () => new Promise<BackendMessage[]>((resolve, reject) => (settle = { resolve, reject }));
  socket.on('close', () => settle?.reject(new Error(`connection closed after ${messages.map(show).join(', ')}`)));
  socket.on('data', (d: Buffer) =>
    parser.parse(d, (m) => {
      if (m.name === 'authenticationCleartextPassword') return socket.write(serialize.password(token));
      messages.push(m);
      if (m.name === 'readyForQuery' && --wanted === 0) {
        const out = messages;
        messages = [];
        settle?.resolve(out);
      }
    }),
  );
  const login = answered();
  socket.write(serialize.startup({ user: 'ci', database: 'app' }));
  await login;
  const messagesOf = (batch: Buffer[], readies: number) => {
    wanted = readies;
    const out = answered();
    socket.write(Buffer.concat(batch)); // all in one write
    return out;
  };
  return {
    async send(batch, readies) {
      return (await messagesOf(batch, readies)).map(show);
    },
    messages: messagesOf,
    close() {
      socket.end(serialize.end());
    },
  };
}

/** Log in, send one batch, collect its answers, and leave. */
export async function pipeline(t: TestBroker, token: string, batch: Buffer[], readies: number): Promise<string[]> {
  return (await pipelineMessages(t, token, batch, readies)).map(show);
}

/** The same, as the parsed messages up to the batch's `readies`-th ReadyForQuery (one by default). */
export async function pipelineMessages(t: TestBroker, token: string, batch: Buffer[], readies = 1): Promise<BackendMessage[]> {
  const c = await openPipeline(t, token);
  try {
    return await c.messages(batch, readies);
  } finally {
    c.close();
  }
}

/** A message as a short string: `E:<code>:<message>`, `Z:<status>`, `D:<fields>`, `C:<tag>`, or its name. */
export function show(m: BackendMessage): string {
  const f = m as unknown as { code: string; message: string; status: string; fields: unknown[]; text: string };
  switch (m.name) {
    case 'error':
      return `E:${f.code}:${f.message}`;
    case 'readyForQuery':
      return `Z:${f.status}`;
    case 'dataRow':
      return `D:${f.fields.join(',')}`;
    case 'commandComplete':
      return `C:${f.text}`;
    default:
      return m.name;
  }
}

export const q = (sql: string): Buffer => serialize.query(sql);
/** Parse, Bind, Execute of an unnamed statement (no Sync). */
export const pbe = (sql: string): Buffer[] => [serialize.parse({ text: sql }), serialize.bind(), serialize.execute()];
export const sync = serialize.sync();
