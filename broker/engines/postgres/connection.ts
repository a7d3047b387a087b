// One client connection: TLS negotiation, startup, token login, upstream connect, then the relay.
import type net from 'node:net';
import tls from 'node:tls';
import { randomInt } from 'node:crypto';
import { refusalReason, type LoginRefusalReason } from '../../audit/logins.js';
import { SessionRefusedError, type ClientInfo, type Identity, type Target } from '../../types.js';
import { Framer, type Frame } from './framing.js';
import {
  authenticationCleartextPassword,
  authenticationOk,
  backendKeyData,
  BodyReader,
  CANCEL_REQUEST,
  errorResponse,
  GSSENC_REQUEST,
  negotiateProtocolVersion,
  parameterStatus,
  PROTOCOL_3_0,
  ProtocolError,
  readStartupParams,
  readyForQuery,
  SSL_REQUEST,
} from './messages.js';
import type { PgCatalog } from './catalog.js';
import { PgMasking } from './masking.js';
import { postgresEstimator } from './estimate.js';
import { Relay } from './relay.js';
import { startupSettings, StartupSettingsError, type StartupSetting } from './startup-settings.js';
import { cancelUpstream, connectUpstream, UpstreamRefusal, type Upstream } from './upstream.js';
import type { EngineConnection, EngineDeps, SessionPort } from '../engine.js';
import { isLoopback, type Login } from '../listener.js';
import { sessionLabel } from '../session-label.js';

export interface PostgresEngineDeps extends EngineDeps {
  /** Why a setting the client asks for at connect (`from`: its `options` switch) may not be passed upstream, or null when it may. */
  startupSettingProblem: (name: string, value: string, from?: string | null) => string | null;
}

const STARTUP_LIMIT = 10_000;

/**
 * The server refused the login over a setting the client asked for (an unknown name: 42704, a bad value: 22023,
 * one its user may not set: 42501 "permission denied to set parameter"): the client's to fix, not the operator's.
 */
function settingRejected(e: UpstreamRefusal): boolean {
  return e.code.startsWith('22') || e.code === '42704' || (e.code === '42501' && /\bparameter\b/.test(e.serverMessage));
}

export interface CancelKey {
  pid: number;
  secret: number;
}

export class PostgresConnection implements EngineConnection {
  private socket: net.Socket;
  /** Startup-phase messages, then (typed) the password message: one framer, so no byte a client sent early is lost. */
  private readonly framer = new Framer(STARTUP_LIMIT, true);
  private session: SessionPort | null = null;
  private upstream: Upstream | null = null;
  private relay: Relay | null = null;
  private closed = false;
  readonly key: CancelKey = { pid: randomInt(1, 2 ** 31 - 1), secret: randomInt(0, 2 ** 31 - 1) };
  private readonly tlsUsed: () => boolean;
  /** Between `S` and the end of the TLS handshake. */
  private tlsPending = false;

  constructor(
    raw: net.Socket,
    private readonly deps: PostgresEngineDeps,
    private readonly hooks: {
      cancel: (key: CancelKey) => void;
      register: (c: PostgresConnection) => void;
      unregister: (c: PostgresConnection) => void;
      /** The target's catalog (column origins for masking), shared by its connections. */
      catalog: (target: Target) => PgCatalog;
    },
    /** The listener's login deadline and slot: done once the token is verified. */
    private readonly slot: Login,
  ) {
    this.socket = raw;
    this.tlsUsed = () => this.socket instanceof tls.TLSSocket;
    raw.setNoDelay(true);
    raw.on('error', () => void this.close('client connection error'));
    raw.on('close', () => void this.close(this.relay ? 'client disconnected' : 'client disconnected during startup'));
    this.listenStartup();
  }

  get upstreamKey(): Upstream | null {
    return this.upstream;
  }

  get target(): Target | null {
    return this.session?.target ?? null;
  }

  /** Who the live session is for (null before login): revocation finds a build's sessions by it. */
  get identity(): Identity | null {
    return this.session?.identity ?? null;
  }

  get sessionId(): string | null {
    return this.session?.id ?? null;
  }

  /**
   * A CancelRequest for this connection: a statement still waiting for approval is withdrawn (its
   * client then gets the refusal); true when there was one, so there is nothing to cancel upstream.
   */
  cancelHeld(): boolean {
    if (!this.session?.holding) return false;
    void this.session.withdraw('the client cancelled the statement');
    return true;
  }

  /** The listener's login deadline passed (Postgres's own wording is "canceling authentication due to timeout"). */
  loginExpired(message: string): void {
    if (!this.tlsPending) return this.refuse('57014', message);
    // Mid-TLS-handshake nothing can be said to the client (and an end() would wait for the handshake): just close.
    this.socket.destroy();
    void this.close(`refused: ${message}`);
  }

  private listenStartup(): void {
    const onData = (chunk: Buffer) => {
      this.framer.push(chunk);
      void this.startupStep(onData).catch((e: unknown) => this.refuse('08P01', (e as Error).message));
    };
    this.socket.on('data', onData);
  }

  /** Handle startup-phase messages; stops listening once the login is under way. */
  private async startupStep(onData: (b: Buffer) => void): Promise<void> {
    for (let f = this.framer.next(); f; f = this.framer.next()) {
      if (f.body.length < 4) throw new ProtocolError('startup packet too short');
      const code = f.body.readInt32BE(0);
      if (code === SSL_REQUEST) {
        if (this.tlsUsed()) throw new ProtocolError('SSLRequest inside TLS');
        if (!this.deps.tls) {
          this.socket.write('N');
          continue;
        }
        // Bytes sent before the TLS handshake completes would bypass TLS: refuse them.
        if (this.framer.buffered > 0) throw new ProtocolError('data received after SSLRequest before the TLS handshake');
        this.socket.removeListener('data', onData);
        this.socket.write('S');
        this.upgrade(onData);
        return;
      }
      if (code === GSSENC_REQUEST) {
        this.socket.write('N');
        continue;
      }
      if (code === CANCEL_REQUEST) {
        if (f.body.length >= 12) this.hooks.cancel({ pid: f.body.readInt32BE(4), secret: f.body.readInt32BE(8) });
        this.socket.destroy();
        void this.close('cancel request'); // no session: this only lets the engine forget the connection
        return;
      }
      if (code >> 16 !== 3) throw new ProtocolError(`unsupported frontend protocol ${code >> 16}.${code & 0xffff}`);
      this.socket.removeListener('data', onData);
      await this.login(f, code);
      return;
    }
  }

  private upgrade(onData: (b: Buffer) => void): void {
    if (!this.deps.tls) return;
    const secure = new tls.TLSSocket(this.socket, { isServer: true, secureContext: this.deps.tls });
    this.tlsPending = true;
    secure.once('secure', () => (this.tlsPending = false));
    secure.on('error', () => void this.close('TLS error'));
    secure.on('close', () => void this.close(this.relay ? 'client disconnected' : 'client disconnected during startup'));
    this.socket = secure;
    secure.on('data', onData);
  }

  private async login(f: Frame, code: number): Promise<void> {
    const params = readStartupParams(f.body.subarray(4));
    const minor = code & 0xffff;
    const unsupported = Object.keys(params).filter((k) => k.startsWith('_pq_.'));
    if (minor > 0 || unsupported.length) this.socket.write(negotiateProtocolVersion(PROTOCOL_3_0, unsupported));
    const address = this.socket.remoteAddress ?? '';
    // Every setting the client asks for (its own parameters and its `options`' -c switches); vetted below.
    let settings: StartupSetting[] = [];
    let malformed: StartupSettingsError | null = null;
    try {
      settings = startupSettings(params);
    } catch (e) {
      if (!(e instanceof StartupSettingsError)) throw e;
      malformed = e;
    }
    const application = settings.filter((s) => s.name.toLowerCase() === 'application_name').at(-1)?.value ?? params.application_name;
    const client: ClientInfo = {
      address,
      port: this.socket.remotePort ?? 0,
      application: application || null,
      user: params.user ?? null,
      tls: this.tlsUsed(),
    };
    const asked = params.database ?? params.user ?? null;
    const refuseLogin = (reason: LoginRefusalReason, code: string, message: string, token?: string) => {
      this.deps.loginRefused?.({ engine: 'postgres', target: asked, client, reason, message }, token);
      this.refuse(code, message);
    };
    if (!this.tlsUsed() && !(this.deps.plaintext === 'loopback' && isLoopback(address))) {
      return refuseLogin('tls_required', '28000', 'jit-broker requires TLS: connect with sslmode=require (the password is a token and is never sent in clear)');
    }
    if (params.replication && params.replication !== 'false') {
      return refuseLogin('replication', '28000', 'jit-broker does not relay replication connections');
    }
    const database = asked ?? '';
    const target = this.deps.targets.get(database);
    if (!target) {
      return refuseLogin('unknown_target', '3D000', `"${database}" is not a target of this broker: set dbname to one of the configured target names`);
    }
    if (malformed) return refuseLogin('startup_parameter', malformed.code, `jit-broker: ${malformed.message}`);
    for (const s of settings) {
      const problem = this.deps.startupSettingProblem(s.name, s.value, s.from);
      if (problem) return refuseLogin('startup_parameter', '0A000', `jit-broker: ${problem}`);
    }
    this.socket.write(authenticationCleartextPassword());
    const password = await this.readPassword();
    let identity: Identity;
    try {
      identity = await this.deps.verify(password);
    } catch (e) {
      return refuseLogin(refusalReason(e), '28P01', (e as Error).message, password);
    }
    if (this.closed) return; // the login deadline passed, or the client left, while the token was checked
    this.slot.done();
    try {
      this.session = await this.deps.openSession(identity, target, client);
    } catch (e) {
      if (e instanceof SessionRefusedError) return refuseLogin(e.reason, e.code, e.message, password);
      this.deps.log('session could not be recorded', { error: String(e) });
      return refuseLogin(
        'audit_unavailable',
        '58030',
        'jit-broker could not record the session in its audit log, so the login is refused; tell the broker operator',
        password,
      );
    }
    try {
      // As the session's role when it has one; the broker's application_name last, so it wins over the client's
      // (whose own is recorded with the session): pg_stat_activity shows which session and build runs what.
      this.upstream = await connectUpstream(this.session.upstream.url, [
        ...settings.map((s): [string, string] => [s.name, s.value]),
        ['application_name', sessionLabel(this.session.id, identity.build)],
      ]);
    } catch (e) {
      this.deps.log('upstream connect failed', { target: target.name, error: String(e) });
      if (e instanceof UpstreamRefusal && settings.length && settingRejected(e)) {
        return this.refuse(e.code, `jit-broker: target "${target.name}" refused a setting this connection asks for: ${e.serverMessage}`);
      }
      this.deps.upstreamFailed?.(target);
      return this.refuse('08006', `jit-broker could not reach target "${target.name}": ${(e as Error).message}`);
    }
    if (this.closed) {
      // The client left (or the broker shut down) during the login: a session opened meanwhile ends too.
      this.upstream.socket.destroy();
      await this.session.close('client disconnected during login');
      return;
    }
    this.hooks.register(this);
    const hello = [authenticationOk()];
    for (const [k, v] of this.upstream.parameters) hello.push(parameterStatus(k, v));
    hello.push(backendKeyData(this.key.pid, this.key.secret), readyForQuery('I'));
    this.socket.write(Buffer.concat(hello));
    const up = this.upstream.socket;
    up.on('error', () => void this.close('upstream connection error'));
    up.on('close', () => void this.close('upstream closed the connection'));
    const rules = this.deps.masking?.forSession(identity, target.name) ?? null;
    const masking = rules ? new PgMasking(rules, this.hooks.catalog(target), this.deps.log) : null;
    this.relay = new Relay(
      this.socket,
      up,
      this.session,
      { maxMessageBytes: this.deps.maxMessageBytes, log: this.deps.log, masking },
      (reason) => void this.close(reason),
    );
    this.session.useEstimator?.(postgresEstimator(this.relay));
    this.relay.start(this.leftover);
  }

  /** Bytes a pipelining client sent after its password, before the relay took over. */
  private leftover: Buffer | undefined;

  /** The password message: it may have come with the startup packet, in the same read, already framed. */
  private readPassword(): Promise<string> {
    this.framer.startup = false; // from here on, messages have a type byte
    return new Promise((resolve, reject) => {
      const take = () => {
        try {
          const m = this.framer.next();
          if (!m) return;
          this.socket.removeListener('data', onData);
          this.socket.pause(); // until the relay listens: nothing may be read and dropped meanwhile
          if (this.framer.buffered) this.leftover = this.framer.rest();
          if (m.type !== 'p') throw new ProtocolError(`expected a password message, got '${m.type}'`);
          resolve(new BodyReader(m.body).cstring());
        } catch (e) {
          reject(e as Error);
        }
      };
      const onData = (chunk: Buffer) => {
        this.framer.push(chunk);
        take();
      };
      this.socket.on('data', onData);
      take();
    });
  }

  /** Answer a FATAL error and close: the client learns why, and nothing else is affected. */
  private refuse(code: string, message: string): void {
    if (this.closed) return;
    this.socket.end(errorResponse({ severity: 'FATAL', code, message }));
    void this.close(`refused: ${message}`);
  }

  /** Shut the connection down, telling the client why when it is still there. */
  terminate(code: string, message: string): Promise<void> {
    if (!this.closed && this.socket.writable) this.socket.write(errorResponse({ severity: 'FATAL', code, message }));
    return this.close(message);
  }

  /** A revoked token: 57P01, as an administrator's termination is reported. */
  revoke(message: string): Promise<void> {
    return this.terminate('57P01', message);
  }

  /** Resolves once the session's end is recorded. */
  close(reason: string): Promise<void> {
    if (this.closed) return this.ending;
    this.closed = true;
    this.relay?.stop();
    this.hooks.unregister(this);
    this.socket.end();
    this.socket.destroySoon?.();
    if (this.upstream && this.relay?.inFlight && this.session) {
      // The server would run an abandoned statement to its end: cancel it, as a client's Ctrl-C would.
      const up = this.upstream;
      cancelUpstream(this.session.target.upstream, up.processId, up.secretKey).catch(() => {});
    }
    if (this.upstream) {
      // Terminate politely so the server ends the backend at once (it rolls back any open transaction).
      if (this.upstream.socket.writable) this.upstream.socket.end(Buffer.from([0x58, 0, 0, 0, 4]));
      this.upstream.socket.destroySoon?.();
    }
    this.ending = this.session?.close(reason) ?? Promise.resolve();
    return this.ending;
  }

  private ending: Promise<void> = Promise.resolve();
}
