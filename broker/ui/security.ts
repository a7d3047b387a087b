// What keeps the console safe whatever a page renders: the response headers of every /ui response, the
// same-origin check of every POST, the `next` a sign-in returns to, and who counts as this machine.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isLoopback } from '../engines/listener.js';

export const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/** Set on every /ui response (pages, assets, errors, event streams). Pages also get `Cache-Control: no-store`. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

export function setSecurityHeaders(reply: FastifyReply): void {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) reply.header(k, v);
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** The request comes from this machine (the local sign-in's condition). */
export function fromLoopback(req: FastifyRequest): boolean {
  return isLoopback(req.socket.remoteAddress ?? '');
}

/**
 * The POST comes from a page of this console: its Origin (else its Referer) names the host the request was sent
 * to, or the configured public URL's origin. Neither header: refused (every browser sends Origin with a POST form).
 */
export function sameOrigin(req: FastifyRequest, publicUrl: string | undefined): boolean {
  const origin = req.headers.origin ?? req.headers.referer;
  if (typeof origin !== 'string' || origin === '' || origin === 'null') return false;
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return false;
  }
  if (publicUrl && u.origin === new URL(publicUrl).origin) return true;
  const host = req.headers.host;
  return typeof host === 'string' && (u.protocol === 'http:' || u.protocol === 'https:') && u.host.toLowerCase() === host.toLowerCase();
}

/**
 * Where a sign-in may return to: a path of this console (`/ui/…`), never another site (`//evil`, `/\evil`,
 * `https://…`) nor anything outside /ui. Anything else: the inbox.
 */
export function safeNext(next: unknown, base = '/ui'): string {
  const fallback = `${base}/reviews`;
  if (typeof next !== 'string' || next.length > 2000) return fallback;
  if (!next.startsWith(`${base}/`) && next !== base) return fallback;
  if (/[\\\s]/.test(next) || next.startsWith('//')) return fallback;
  try {
    const u = new URL(next, 'http://console.invalid');
    if (u.origin !== 'http://console.invalid' || !(u.pathname === base || u.pathname.startsWith(`${base}/`))) return fallback;
    return u.pathname + u.search;
  } catch {
    return fallback;
  }
}
