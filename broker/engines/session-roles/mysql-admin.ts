// A serial text-protocol client on one MySQL/MariaDB connection (the broker's session-role statements, and the
// statements that set a session's upstream connection up before the relay starts): a statement's OK, its rows, or
// its error as the server words it.
import { PacketIO } from '../mysql/framing.js';
import { COM, command, isEof, PacketReader, readErr } from '../mysql/protocol.js';
import { readTextRow } from '../mysql/results.js';
import { connectUpstream, type MysqlUpstream } from '../mysql/upstream.js';

export type Rows = (string | null)[][];

/** The server refused a statement (ERR packet). */
export class MysqlAdminError extends Error {
  override name = 'MysqlAdminError';
  constructor(
    readonly errno: number,
    readonly sqlstate: string,
    message: string,
  ) {
    super(message);
  }
}

/** Run one statement (COM_QUERY) on a connection between commands: its rows (none for an OK); the socket is left paused. */
export async function runStatement(up: MysqlUpstream, sql: string, timeoutMs = 10_000): Promise<Rows> {
  const io = new PacketIO(up.socket, 'the target', 1 << 24);
  const timer = setTimeout(() => up.socket.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  try {
    up.socket.write(command(COM.QUERY, sql));
    const head = await io.read();
    if (head.payload[0] === 0xff) {
      const e = readErr(head.payload);
      throw new MysqlAdminError(e.errno, e.sqlstate, e.message);
    }
    if (head.payload[0] === 0x00) return [];
    const columns = new PacketReader(head.payload).lenenc('column count') ?? 0;
    for (let i = 0; i < columns; i++) await io.read();
    if (!isEof((await io.read()).payload)) throw new Error('expected the end of the column definitions');
    const rows: Rows = [];
    for (let m = await io.read(); !isEof(m.payload); m = await io.read()) {
      if (m.payload[0] === 0xff) {
        const e = readErr(m.payload);
        throw new MysqlAdminError(e.errno, e.sqlstate, e.message);
      }
      rows.push(readTextRow(m.payload, columns).map((v) => v?.toString('utf8') ?? null));
    }
    return rows;
  } finally {
    clearTimeout(timer);
    io.detach();
  }
}

/** The broker's own connection to a target (its URL as it is at each connect), serial, reconnected when lost. */
export class MysqlAdmin {
  private up: Promise<MysqlUpstream> | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly url: () => string,
    private readonly timeoutMs = 10_000,
  ) {}

  /** The server's version (its greeting), connecting if need be. */
  async version(): Promise<string> {
    return (await this.connection()).version;
  }

  query(sql: string): Promise<Rows> {
    const run = this.chain.then(
      () => this.send(sql),
      () => this.send(sql),
    );
    this.chain = run.catch(() => {});
    return run;
  }

  private connection(): Promise<MysqlUpstream> {
    if (this.closed) return Promise.reject(new Error('closed'));
    if (!this.up) {
      const pending = connectUpstream(this.url(), { timeoutMs: this.timeoutMs, attrs: { program_name: 'jit-broker session roles' } }).then((u) => {
        const lost = () => {
          if (this.up === pending) this.up = null;
        };
        u.socket.on('close', lost);
        u.socket.on('error', lost);
        return u;
      });
      pending.catch(() => {
        if (this.up === pending) this.up = null;
      });
      this.up = pending;
    }
    return this.up;
  }

  private async send(sql: string): Promise<Rows> {
    return runStatement(await this.connection(), sql, this.timeoutMs);
  }

  async close(): Promise<void> {
    this.closed = true;
    const up = this.up;
    this.up = null;
    const u = await up?.catch(() => null);
    if (u?.socket.writable) u.socket.end(command(COM.QUIT));
    u?.socket.destroySoon();
  }
}
