// The broker's own connection to the real database, with credentials only the broker holds.
import net from 'node:net';
import tls from 'node:tls';
import { Parser } from 'pg-protocol/dist/parser.js';
import { serialize } from 'pg-protocol';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import sasl from 'pg/lib/crypto/sasl.js';
import { parse as parseUrl } from 'pg-connection-string';
import { createHash } from 'node:crypto';
import { connectTcp, UpstreamError } from '../upstream-net.js';

export interface Upstream {
  socket: net.Socket;
  /** ParameterStatus values the server sent during startup, to replay to the client. */
  parameters: Map<string, string>;
  processId: number;
  secretKey: number;
  host: string;
  port: number;
  ssl: boolean;
}

export { UpstreamError };

/** The server refused the broker's login with an ErrorResponse: its SQLSTATE tells a bad setting from a bad password. */
export class UpstreamRefusal extends UpstreamError {
  constructor(
    message: string,
    readonly code: string,
    /** The server's own message, without the broker's words around it. */
    readonly serverMessage: string,
  ) {
    super(message);
  }
}

/**
 * The StartupMessage, parameters in the order given (the server applies settings in order: a later one wins).
 * Not pg-protocol's serializer: it appends client_encoding=UTF8 after them, which would override the client's.
 */
export function startupMessage(params: [string, string][]): Buffer {
  const parts: Buffer[] = [Buffer.alloc(8)];
  for (const [k, v] of params) parts.push(Buffer.from(`${k}\0${v}\0`, 'utf8'));
  parts.push(Buffer.from([0]));
  const out = Buffer.concat(parts);
  out.writeInt32BE(out.length, 0);
  out.writeInt32BE(196608, 4); // protocol 3.0
  return out;
}

interface Target {
  host: string;
  port: number;
  user: string;
  password: string | undefined;
  database: string;
  ssl: false | 'prefer' | 'require' | 'verify';
}

export function parseUpstreamUrl(url: string): Target {
  const c = parseUrl(url);
  const mode = (c as { sslmode?: string }).sslmode ?? (c.ssl ? 'require' : 'disable');
  return {
    host: c.host ?? '127.0.0.1',
    port: Number(c.port ?? 5432),
    user: c.user ?? 'postgres',
    password: c.password,
    database: c.database ?? c.user ?? 'postgres',
    ssl: mode === 'disable' ? false : mode === 'prefer' || mode === 'allow' ? 'prefer' : mode.startsWith('verify') ? 'verify' : 'require',
  };
}

async function negotiateTls(s: net.Socket, t: Target): Promise<net.Socket> {
  if (!t.ssl) return s;
  s.write(serialize.requestSsl());
  const answer = await new Promise<string>((resolve, reject) => {
    s.once('data', (d: Buffer) => resolve(String.fromCharCode(d[0]!)));
    s.once('error', reject);
  });
  if (answer !== 'S') {
    if (t.ssl === 'prefer') return s;
    throw new UpstreamError(`${t.host}:${t.port} does not accept TLS, and the target's URL requires it`);
  }
  return new Promise((resolve, reject) => {
    const secure = tls.connect({ socket: s, servername: net.isIP(t.host) ? undefined : t.host, rejectUnauthorized: t.ssl === 'verify' });
    secure.once('secureConnect', () => resolve(secure));
    secure.once('error', (e) => reject(new UpstreamError(`TLS to ${t.host}:${t.port} failed: ${e.message}`)));
  });
}

/**
 * Open, authenticate (trust, cleartext, md5, SCRAM-SHA-256) and wait for ReadyForQuery. `settings` are the
 * client's session settings, already vetted, sent in order as startup parameters (client_encoding is UTF8
 * unless one of them says otherwise); the user and database are the target's.
 */
export async function connectUpstream(url: string, settings: [string, string][] | Record<string, string>, timeoutMs = 10_000): Promise<Upstream> {
  const ordered = Array.isArray(settings) ? settings : Object.entries(settings);
  const t = parseUpstreamUrl(url);
  const raw = await connectTcp(t.host, t.port, timeoutMs);
  let socket: net.Socket;
  try {
    socket = await negotiateTls(raw, t);
  } catch (e) {
    raw.destroy();
    throw e;
  }
  const parameters = new Map<string, string>();
  const parser = new Parser();
  let processId = 0;
  let secretKey = 0;
  let scram: { mechanism: string; response: string; message: string } | null = null;
  const password = () => {
    if (t.password === undefined) throw new UpstreamError('the upstream asks for a password and the target URL has none');
    return t.password;
  };

  return new Promise<Upstream>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => fail(new UpstreamError(`no ReadyForQuery from ${t.host}:${t.port} after ${timeoutMs} ms`)), timeoutMs);
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.destroy();
      reject(e instanceof UpstreamError ? e : new UpstreamError(e.message));
    };
    const onMessage = async (m: BackendMessage) => {
      switch (m.name) {
        case 'authenticationOk':
          return;
        case 'authenticationCleartextPassword':
          socket.write(serialize.password(password()));
          return;
        case 'authenticationMD5Password': {
          const inner = createHash('md5')
            .update(password() + t.user)
            .digest('hex');
          const salt = (m as unknown as { salt: Buffer }).salt;
          socket.write(
            serialize.password(
              `md5${createHash('md5')
                .update(Buffer.concat([Buffer.from(inner), salt]))
                .digest('hex')}`,
            ),
          );
          return;
        }
        case 'authenticationSASL':
          scram = sasl.startSession((m as unknown as { mechanisms: string[] }).mechanisms);
          socket.write(serialize.sendSASLInitialResponseMessage(scram.mechanism, scram.response));
          return;
        case 'authenticationSASLContinue':
          await sasl.continueSession(scram, password(), (m as unknown as { data: string }).data);
          socket.write(serialize.sendSCRAMClientFinalMessage(scram!.response));
          return;
        case 'authenticationSASLFinal':
          sasl.finalizeSession(scram, (m as unknown as { data: string }).data);
          return;
        case 'parameterStatus': {
          const p = m as unknown as { parameterName: string; parameterValue: string };
          parameters.set(p.parameterName, p.parameterValue);
          return;
        }
        case 'backendKeyData': {
          const k = m as unknown as { processID: number; secretKey: number };
          processId = k.processID;
          secretKey = k.secretKey;
          return;
        }
        case 'error': {
          const e = m as unknown as { message: string; code?: string };
          throw new UpstreamRefusal(`the upstream refused the broker's login: ${e.message}`, e.code ?? '', e.message);
        }
        case 'readyForQuery':
          settled = true;
          clearTimeout(timer);
          socket.removeListener('data', onData);
          socket.removeListener('error', fail);
          socket.removeListener('close', onClose);
          socket.pause(); // the relay resumes it once its own listeners are attached
          resolve({ socket, parameters, processId, secretKey, host: t.host, port: t.port, ssl: socket instanceof tls.TLSSocket });
          return;
        default:
          return; // notices during startup
      }
    };
    // Messages are handled strictly in order, even when SCRAM's key derivation is asynchronous.
    let chain = Promise.resolve();
    const onData = (d: Buffer) => {
      parser.parse(d, (m) => {
        chain = chain.then(() => onMessage(m)).catch(fail);
      });
    };
    const onClose = () => fail(new UpstreamError(`${t.host}:${t.port} closed the connection during startup`));
    socket.on('data', onData);
    socket.once('error', fail);
    socket.once('close', onClose);
    const encoding: [string, string][] = ordered.some(([k]) => k.toLowerCase() === 'client_encoding') ? [] : [['client_encoding', 'UTF8']];
    socket.write(startupMessage([['user', t.user], ['database', t.database], ...encoding, ...ordered]));
  });
}

/** Send a CancelRequest for the upstream backend on a fresh connection, as libpq does. */
export async function cancelUpstream(url: string, processId: number, secretKey: number): Promise<void> {
  const t = parseUpstreamUrl(url);
  const raw = await connectTcp(t.host, t.port, 5_000);
  const s = await negotiateTls(raw, t).catch(() => raw);
  await new Promise<void>((resolve) => {
    s.end(serialize.cancel(processId, secretKey), () => resolve());
    s.once('error', () => resolve());
  });
  s.destroy();
}
