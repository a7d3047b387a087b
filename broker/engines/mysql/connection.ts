// One client connection: greeting, TLS, token login, the broker's own upstream login, then the relay.
import type net from 'node:net';
import tls from 'node:tls';
import { refusalReason, type LoginRefusalReason } from '../../audit/logins.js';
import { SessionRefusedError, type ClientInfo, type Identity, type Target } from '../../types.js';
import type { EngineConnection, EngineDeps, SessionPort } from '../engine.js';
import { isLoopback, type Login } from '../listener.js';
import { PacketIO } from './framing.js';
import { ADVERTISED, greeting, HandshakeRefusal, makeScramble, readHello, readPassword, type ConnectionPhase } from './handshake.js';
import {
  CAP,
  COM,
  command,
  ER,
  errPacket,
  latin1Collation,
  okPayload,
  packet,
  ProtocolError,
  safeCollation,
  UTF8MB4_GENERAL_CI,
  type ErrorCode,
} from './protocol.js';
import { mysqlEstimator } from './estimate.js';
import { Relay, type KillPlan } from './relay.js';
import { mysqlResultSets } from './masking.js';
import { connectUpstream, killUpstream, parseMysqlUrl, type MysqlUpstream } from './upstream.js';
import { runStatement } from '../session-roles/mysql-admin.js';
import { myString } from '../session-roles/mysql.js';
import { sessionLabel } from '../session-label.js';

export interface MysqlEngineDeps extends EngineDeps {
  /**
   * Offer CLIENT_LOCAL_FILES: only when some rule could let a LOAD DATA LOCAL INFILE (`admin`) run; each
   * such statement is decided by policy like any other.
   */
  localInfile?: boolean;
}

export interface ConnectionHooks {
  register(c: MysqlConnection): void;
  unregister(c: MysqlConnection): void;
  kill(requester: MysqlConnection, scope: 'QUERY' | 'CONNECTION', id: number): KillPlan;
  /** The server version the broker announces, and what it learns from upstream greetings. */
  version(): string;
  learned(version: string): void;
}

/** Handshake packets are small; a bigger one is not a client. */
const HANDSHAKE_LIMIT = 64 * 1024;

/** SQLSTATEs of the session core's login refusals, mapped to MySQL error numbers. */
const refusalCode = (sqlstate: string): ErrorCode => (sqlstate === '42501' ? ER.DBACCESS_DENIED : ER.ACCESS_DENIED);

export class MysqlConnection implements EngineConnection {
  private socket: net.Socket;
  private readonly phase: ConnectionPhase;
  private session: SessionPort | null = null;
  private upstream: MysqlUpstream | null = null;
  private relay: Relay | null = null;
  private closed = false;
  private ending: Promise<void> = Promise.resolve();
  /** Between the SSL request and the end of the TLS handshake. */
  private tlsPending = false;

  constructor(
    raw: net.Socket,
    readonly id: number,
    private readonly deps: MysqlEngineDeps,
    private readonly hooks: ConnectionHooks,
    /** The listener's login deadline (MySQL's connect_timeout) and slot: done once the token is verified. */
    private readonly slot: Login,
  ) {
    this.socket = raw;
    raw.setNoDelay(true);
    raw.on('error', () => void this.close('client connection error'));
    raw.on('close', () => void this.close(this.relay ? 'client disconnected' : 'client disconnected during the handshake'));
    this.phase = { io: new PacketIO(raw, 'the client', HANDSHAKE_LIMIT), lastSeq: 0, secure: false };
    this.login().catch((e: unknown) => {
      if (e instanceof HandshakeRefusal) return this.refuse(e.code, e.message);
      if (e instanceof ProtocolError) return this.refuse(e.code, `jit-broker: protocol violation: ${e.message}`);
      void this.close(`handshake failed: ${(e as Error).message}`);
    });
  }

  // identity, sessionId, target: the EngineConnection view of the session, as the Postgres connection gives it (one line each).
  get identity(): Identity | null {
    return this.session?.identity ?? null;
  }

  get sessionId(): string | null {
    return this.session?.id ?? null;
  }

  get target(): Target | null {
    return this.session?.target ?? null;
  }

  /** The listener's login deadline passed. */
  loginExpired(message: string): void {
    if (!this.tlsPending) return this.refuse(ER.HANDSHAKE_ERROR, message);
    // Mid-TLS-handshake nothing can be said to the client (and an end() would wait for the handshake): just close.
    this.socket.destroy();
    void this.close(`refused: ${message}`);
  }

  private upgrade(early: Buffer): tls.TLSSocket {
    const raw = this.socket;
    // The TLS ClientHello may have come in the same read as the SSL request: give it back to the socket.
    if (early.length) raw.unshift(early);
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: this.deps.tls! });
    this.tlsPending = true;
    secure.once('secure', () => (this.tlsPending = false));
    secure.on('error', () => void this.close('TLS error'));
    secure.on('close', () => void this.close(this.relay ? 'client disconnected' : 'client disconnected during the handshake'));
    this.socket = secure;
    return secure;
  }

  private async login(): Promise<void> {
    const scramble = makeScramble();
    const offered = ADVERTISED | (this.deps.tls ? CAP.SSL : 0) | (this.deps.localInfile ? CAP.LOCAL_FILES : 0);
    this.socket.write(greeting({ version: this.hooks.version(), connectionId: this.id, scramble, capabilities: offered }));
    const hello = await readHello(this.phase, offered, this.deps.tls ? (early) => this.upgrade(early) : null);
    const address = this.socket.remoteAddress ?? '';
    const client: ClientInfo = {
      address,
      port: this.socket.remotePort ?? 0,
      application: hello.attrs.get('program_name') || hello.attrs.get('_client_name') || null,
      user: hello.user || null,
      tls: this.phase.secure,
    };
    const refuseLogin = (reason: LoginRefusalReason, code: ErrorCode, message: string, token?: string) => {
      this.deps.loginRefused?.({ engine: 'mysql', target: hello.database || null, client, reason, message }, token);
      this.refuse(code, message);
    };
    if (!this.phase.secure && !(this.deps.plaintext === 'loopback' && isLoopback(address))) {
      return refuseLogin(
        'tls_required',
        ER.SECURE_TRANSPORT_REQUIRED,
        'jit-broker requires TLS: connect with SSL (mariadb/mysql: the default, or --ssl; mysql2: the ssl option); the password is a token and is never sent in clear',
      );
    }
    let name = hello.database;
    if (!name) {
      const only = [...this.deps.targets.keys()];
      if (only.length !== 1)
        return refuseLogin('unknown_target', ER.BAD_DB, `jit-broker: no database given: name one of the targets (${only.join(', ')}) as the database`);
      name = only[0]!;
    }
    const target = this.deps.targets.get(name);
    if (!target)
      return refuseLogin(
        'unknown_target',
        ER.BAD_DB,
        `jit-broker: Unknown database '${name}': it is not a target of this broker; use one of: ${[...this.deps.targets.keys()].join(', ')}`,
      );
    const password = await readPassword(this.phase, hello, scramble);
    let identity: Identity;
    try {
      identity = await this.deps.verify(password);
    } catch (e) {
      return refuseLogin(refusalReason(e), ER.ACCESS_DENIED, `jit-broker: ${(e as Error).message}`, password);
    }
    if (this.closed) return; // the login deadline passed, or the client left, while the token was checked
    this.slot.done();
    try {
      this.session = await this.deps.openSession(identity, target, client);
    } catch (e) {
      if (e instanceof SessionRefusedError) return refuseLogin(e.reason, refusalCode(e.code), e.message, password);
      this.deps.log('session could not be recorded', { error: String(e) });
      return refuseLogin(
        'audit_unavailable',
        ER.UNKNOWN_ERROR,
        'jit-broker could not record the session in its audit log, so the login is refused; tell the broker operator',
        password,
      );
    }
    const login = this.session.upstream;
    try {
      // As the session's role when it has one. What runs is visible in the server's own tools: the connect attributes
      // (performance_schema.session_connect_attrs) and the user variables @jit_session, @jit_build (until a reset).
      this.upstream = await connectUpstream(login.url, {
        clientFlags: hello.capabilities,
        // The classifier reads text as the server does only for these charsets; any other is replaced.
        collation: safeCollation(hello.collation) ? hello.collation : UTF8MB4_GENERAL_CI,
        attrs: {
          program_name: sessionLabel(this.session.id, identity.build, 200),
          jit_session: this.session.id,
          jit_subject: identity.subject.slice(0, 200),
          ...(identity.build ? { jit_build: identity.build.slice(0, 200) } : {}),
        },
        noDatabase: login.noDatabase,
      });
      const variables = `SET @jit_session = ${myString(this.session.id)}, @jit_build = ${identity.build === null ? 'NULL' : myString(identity.build)}`;
      for (const sql of [...login.setup, variables]) await runStatement(this.upstream, sql);
    } catch (e) {
      this.deps.log('upstream connect failed', { target: target.name, error: String(e) });
      this.deps.upstreamFailed?.(target);
      return this.refuse(ER.UNKNOWN_ERROR, `jit-broker could not reach target "${target.name}": ${(e as Error).message}`);
    }
    if (this.closed) {
      this.upstream.socket.destroy();
      return;
    }
    this.hooks.register(this);
    this.hooks.learned(this.upstream.version);
    // Versioned comments are read as this server reads them (its greeting says which it is).
    this.session.mysql?.serverVersion(this.upstream.version);
    this.socket.write(packet(this.phase.lastSeq + 1, okPayload({ status: this.upstream.status })));
    const up = this.upstream.socket;
    const masking = this.deps.masking?.forSession(identity, target.name) ?? null;
    up.on('error', () => void this.close('upstream connection error'));
    up.on('close', () => void this.close('upstream closed the connection'));
    this.relay = new Relay(
      this.socket,
      up,
      this.session,
      {
        maxMessageBytes: this.deps.maxMessageBytes,
        encoding: latin1Collation(hello.collation) ? 'latin1' : 'utf8',
        targetName: target.name,
        database: this.upstream.database,
        kill: (scope, id) => this.hooks.kill(this, scope, id),
        resultSet: masking ? mysqlResultSets(masking) : undefined,
        log: this.deps.log,
      },
      (reason) => void this.close(reason),
    );
    this.session.useEstimator?.(mysqlEstimator(this.relay, /mariadb/i.test(this.upstream.version)));
    this.phase.io.detach();
    this.relay.start(this.phase.io.buffered());
  }

  /** KILL QUERY: withdraw a statement held for approval, else interrupt what runs upstream. */
  async cancelQuery(reason: string): Promise<void> {
    if (this.session?.holding) {
      await this.session.withdraw(reason);
      return;
    }
    if (this.upstream && this.relay?.inFlight && this.session) await killUpstream(this.session.upstream.url, this.upstream.threadId, 'QUERY');
  }

  /** KILL CONNECTION: end this connection (what runs upstream is killed by close()). */
  async kill(reason: string): Promise<void> {
    await this.close(reason);
  }

  /** Answer an ERR and close: the client learns why, and nothing else is affected. */
  private refuse(code: ErrorCode, message: string): void {
    if (this.closed) return;
    this.socket.end(errPacket(this.phase.lastSeq + 1, code, message));
    void this.close(`refused: ${message}`);
  }

  /** Shut the connection down (broker shutdown, revocation), telling the client why when it can be told. */
  terminate(code: ErrorCode, message: string): Promise<void> {
    if (!this.closed && this.socket.writable) {
      // Idle or waiting for a held statement, the client reads this as the answer to its next (or current) command.
      if (!this.relay) this.socket.write(errPacket(this.phase.lastSeq + 1, code, message));
      else if (!this.relay.inFlight) this.socket.write(errPacket(1, code, message));
    }
    return this.close(message);
  }

  /** A revoked token: ER_ACCESS_DENIED_ERROR, as a login with it would be answered. */
  revoke(message: string): Promise<void> {
    return this.terminate(ER.ACCESS_DENIED, message);
  }

  /** Resolves once the session's end is recorded. */
  close(reason: string): Promise<void> {
    if (this.closed) return this.ending;
    this.closed = true;
    const abandoned = this.relay?.inFlight ?? false;
    this.relay?.stop(reason);
    this.hooks.unregister(this);
    this.socket.end();
    this.socket.destroySoon?.();
    if (this.upstream) {
      // The server would run an abandoned statement to its end: kill it, and its connection.
      if (abandoned && this.session) {
        killUpstream(this.session.upstream.url, this.upstream.threadId, 'CONNECTION').catch((e: unknown) =>
          this.deps.log('KILL of an abandoned statement failed', { error: String(e) }),
        );
      }
      if (this.upstream.socket.writable) this.upstream.socket.end(command(COM.QUIT));
      this.upstream.socket.destroySoon?.();
    }
    this.ending = this.session?.close(reason) ?? Promise.resolve();
    return this.ending;
  }
}

/** Checks a mysql target's URL at startup, so a bad one fails the broker's start rather than each login. */
export function checkMysqlTarget(t: Target): void {
  try {
    parseMysqlUrl(t.upstream);
  } catch (e) {
    throw new Error(`target ${t.name}: ${(e as Error).message}`);
  }
}

/**
 * A mysql target named other than its upstream database: clients see the target's name (the handshake, COM_INIT_DB,
 * `USE <target>` alone), but inside SQL — `db.table`, `SHOW TABLES FROM db`, information_schema filters, DATABASE() —
 * the server knows only the upstream name, and the broker does not rewrite SQL (docs/mysql.md: "The target's name").
 */
export function mysqlTargetNameWarning(t: Target): string | null {
  const db = parseMysqlUrl(t.upstream).database;
  if (db === t.name) return null;
  return `target ${t.name}: its upstream database is named ${JSON.stringify(db)}; inside SQL (db.table, SHOW TABLES FROM, information_schema, DATABASE()) clients must use that name, since the broker does not rewrite SQL: name the target ${JSON.stringify(db)} to make both one`;
}
