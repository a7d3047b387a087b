// The `jit` command's one client of the running broker's HTTP listener: the admin API (listen.http +
// admin_token of the config, or --url / JIT_ADMIN_TOKEN; with `admin_token: generate`, the token the broker
// keeps in <data_dir>/admin.token) and the token endpoint. Every failure to reach it or to be let in is an
// ApiError that says what to do.
import { adminTokenFile, GENERATE, readAdminToken } from '../admin-token.js';
import type { Config } from '../config.js';

/** A failure the CLI reports as it is (exit 1), without a stack. */
export class ApiError extends Error {
  override name = 'ApiError';
}

/** Where the admin API is and the token it takes. */
export interface ApiTarget {
  url: string;
  token: string;
}

/** The broker's HTTP listener, from --url or listen.http of the config. */
export function brokerUrl(c: Config, url: string | undefined): string {
  if (url) return url.replace(/\/+$/, '');
  const h = c.listen.http;
  if (!h) throw new ApiError(`listen.http is off in ${c.file ?? 'the embedded default config'}: pass --url http://host:port of the broker`);
  const host = h.host === '0.0.0.0' ? '127.0.0.1' : h.host === '::' ? '::1' : h.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${h.port}`;
}

/**
 * The running broker's HTTP API and admin token, from the config (or --url / JIT_ADMIN_TOKEN); with
 * `admin_token: generate` (the embedded default), the token the broker generated under data_dir.
 */
export function target(c: Config, url: string | undefined): ApiTarget {
  const where = c.file ?? 'the embedded default config';
  const token = process.env.JIT_ADMIN_TOKEN || (c.admin_token === GENERATE ? generated(c.data_dir) : c.admin_token);
  if (!token) throw new ApiError(`no admin token: set admin_token in ${where} (the running broker's), or JIT_ADMIN_TOKEN`);
  return { url: brokerUrl(c, url), token };
}

function generated(dataDir: string): string {
  let token: string | null;
  try {
    token = readAdminToken(dataDir);
  } catch (e) {
    throw new ApiError((e as Error).message);
  }
  if (!token)
    throw new ApiError(
      `no admin token yet: the broker writes ${adminTokenFile(dataDir)} when it starts; start it (jit start) with the same config, from the same folder, first`,
    );
  return token;
}

/** One request to the broker (15 s at most); not reaching it at all is an ApiError naming `where`. */
async function send(url: string, where: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
  } catch (e) {
    const c = (e as { cause?: { code?: string; message?: string } }).cause;
    const cause = c?.code ?? c?.message ?? (e as Error).message;
    throw new ApiError(`cannot reach the broker at ${where} (${cause}): is it running (jit start)? Or pass --url`);
  }
}

/** One admin API call; connection and auth failures become ApiErrors that say what to do. */
export async function call<T>(t: ApiTarget, method: 'GET' | 'POST', path: string, body?: object): Promise<{ status: number; data: T }> {
  const res = await send(`${t.url}${path}`, t.url, {
    method,
    headers: { authorization: `Bearer ${t.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    data = { error: text.slice(0, 200) };
  }
  if (res.status === 401) throw new ApiError(`the broker at ${t.url} refused the admin token: it must equal the running broker's admin_token`);
  if (res.status === 403) throw new ApiError(`the broker at ${t.url} refused: ${(data as { error?: string }).error ?? 'forbidden'}`);
  if (res.status === 503) throw new ApiError(`the broker at ${t.url} has its admin API disabled: ${(data as { error?: string }).error ?? 'no admin_token'}`);
  if (res.status >= 500 || (res.status === 400 && !(data as { code?: string }).code)) {
    throw new ApiError(
      `the broker answered ${res.status}: ${(data as { error?: string; message?: string }).message ?? (data as { error?: string }).error ?? text}`,
    );
  }
  return { status: res.status, data: data as T };
}

/**
 * RFC 8693 token exchange: POST /oauth/token of the broker at `base` (brokerUrl()). No admin token: the
 * subject token in the form is the credential. Resolves to the token response; a refusal is an ApiError.
 */
export async function exchangeToken(base: string, form: URLSearchParams): Promise<Record<string, unknown>> {
  const url = `${base}/oauth/token`;
  const res = await send(url, url, { method: 'POST', body: form });
  const text = await res.text();
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new ApiError(`the broker answered ${res.status}: ${text.slice(0, 200)}`);
  }
  if (!res.ok) {
    throw new ApiError(`token exchange refused: ${String(data['error'] ?? res.status)}: ${String(data['error_description'] ?? text.slice(0, 200))}`);
  }
  return data;
}
