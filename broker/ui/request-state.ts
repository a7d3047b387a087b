// What the console knows about one request once its session is read (index.ts's onRequest hook): the session,
// and the page context built from it. A WeakMap rather than a fastify decoration: no global type augmentation.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { mayApproveAny } from './auth/access.js';
import type { UiSession, UiUser } from './auth/session.js';
import type { UiContext } from './context.js';

export const BASE = '/ui';

const sessions = new WeakMap<FastifyRequest, UiSession>();

export function setSession(req: FastifyRequest, s: UiSession): void {
  sessions.set(req, s);
}

/** The request's session (every /ui route but the assets has one). */
export function sessionOf(req: FastifyRequest): UiSession {
  const s = sessions.get(req);
  if (!s) throw new Error('console: no session for this request');
  return s;
}

/** The signed-in user (routes behind the sign-in only). */
export function userOf(req: FastifyRequest): UiUser {
  const u = sessions.get(req)?.user;
  if (!u) throw new Error('console: nobody is signed in');
  return u;
}

export function contextOf(req: FastifyRequest): UiContext {
  const s = sessions.get(req);
  const u = s?.user ?? null;
  return { base: BASE, user: u ? { name: u.name, email: u.email, canApprove: mayApproveAny(u) } : null, csrf: s?.csrf ?? '', now: new Date() };
}

/** A rendered page: HTML, never cached (it shows who is signed in and their CSRF token). */
export function sendPage(reply: FastifyReply, status: number, doc: string): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(doc);
}
