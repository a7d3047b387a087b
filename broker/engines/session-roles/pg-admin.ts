// The broker's own connection to a PostgreSQL target for its session roles: one per target, serial (callers
// queue), simple protocol, logged in with the target's URL as it is at each (re)connect (a rotated password is
// picked up), reconnected when lost. A query string of several statements runs as one implicit transaction.
import { Parser } from 'pg-protocol/dist/parser.js';
import { serialize } from 'pg-protocol';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { connectUpstream, type Upstream } from '../postgres/upstream.js';

export type Rows = (string | null)[][];

/** The server refused a statement: its message and SQLSTATE. */
export class PgAdminError extends Error {
  override name = 'PgAdminError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export class PgAdmin {
  private up: Promise<Upstream> | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    /** The target's URL now (read at each connect). */
    private readonly url: () => string,
    private readonly timeoutMs = 10_000,
    private readonly applicationName = 'jit-broker session roles',
  ) {}

  /** The result sets of a query string (text values), in order; rejects with the first error, or on a timeout. */
  query(sql: string): Promise<Rows[]> {
    const run = this.chain.then(
      () => this.send(sql),
      () => this.send(sql),
    );
    this.chain = run.catch(() => {});
    return run;
  }

  private connection(): Promise<Upstream> {
    if (this.closed) return Promise.reject(new Error('closed'));
    this.up ??= connectUpstream(this.url(), { application_name: this.applicationName }, this.timeoutMs).then((u) => {
      const lost = () => {
        if (this.up === pending) this.up = null;
      };
      u.socket.on('close', lost);
      u.socket.on('error', lost);
      return u;
    });
    const pending = this.up;
    return pending.catch((e: unknown) => {
      if (this.up === pending) this.up = null;
      throw e;
    });
  }

  private async send(sql: string): Promise<Rows[]> {
    const u = await this.connection();
    return new Promise<Rows[]>((resolve, reject) => {
      const sets: Rows[] = [];
      let error: PgAdminError | null = null;
      const parser = new Parser();
      const done = (e: Error | null) => {
        clearTimeout(timer);
        u.socket.removeListener('data', onData);
        u.socket.removeListener('close', onClose);
        u.socket.pause();
        if (e) reject(e);
        else resolve(sets);
      };
      const timer = setTimeout(() => {
        u.socket.destroy();
        done(new Error(`no answer from ${u.host}:${u.port} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      const onClose = () => done(new Error(`${u.host}:${u.port} closed the connection`));
      const onData = (d: Buffer) =>
        parser.parse(d, (m: BackendMessage) => {
          if (m.name === 'rowDescription') sets.push([]);
          else if (m.name === 'dataRow') sets[sets.length - 1]?.push((m as unknown as { fields: (string | null)[] }).fields);
          else if (m.name === 'error') {
            const f = m as unknown as { message: string; code?: string };
            error ??= new PgAdminError(f.message, f.code ?? '');
          } else if (m.name === 'readyForQuery') done(error);
        });
      u.socket.on('data', onData);
      u.socket.once('close', onClose);
      u.socket.resume();
      u.socket.write(serialize.query(sql));
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const up = this.up;
    this.up = null;
    const u = await up?.catch(() => null);
    if (u?.socket.writable) u.socket.end(serialize.end());
    u?.socket.destroySoon();
  }
}
