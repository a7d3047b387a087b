// GET /ui/events: Server-Sent Events for the signed-in console. A `changed` event (coalesced, at most one per
// 250 ms) tells the page to reload its list; a comment every 15 s keeps proxies from closing the stream. The
// stream ends when the session expires or signs out (streams are kept by session id for that).
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { ChangeFeed } from '../change-feed.js';
import { SECURITY_HEADERS } from '../security.js';
import { sessionOf } from '../request-state.js';

const HEARTBEAT_MS = 15_000;
const COALESCE_MS = 250;
/** At most this many streams at once on this broker (each is a socket and two timers). */
const MAX_STREAMS = 1000;

export class EventStreams {
  private readonly bySession = new Map<string, Set<() => void>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(sid: string, end: () => void): (() => void) | null {
    if (this.count >= MAX_STREAMS) return null;
    let set = this.bySession.get(sid);
    if (!set) this.bySession.set(sid, (set = new Set()));
    set.add(end);
    this.count++;
    return () => {
      if (!set.delete(end)) return;
      this.count--;
      if (!set.size) this.bySession.delete(sid);
    };
  }

  /** Ends every stream of a session (it signed out). */
  endSession(sid: string): void {
    for (const end of [...(this.bySession.get(sid) ?? [])]) end();
  }

  endAll(): void {
    for (const sid of [...this.bySession.keys()]) this.endSession(sid);
  }
}

export const eventsRoute: FastifyPluginAsync<{ feed: ChangeFeed; streams: EventStreams }> = async (app, { feed, streams }) => {
  app.get('/events', async (req, reply: FastifyReply) => {
    const s = sessionOf(req);
    let remove: (() => void) | null = null;
    let ended = false;
    const timers: NodeJS.Timeout[] = [];
    let pending: NodeJS.Timeout | null = null;
    let unsubscribe: () => void = () => {};
    const end = () => {
      if (ended) return;
      ended = true;
      for (const t of timers) clearTimeout(t);
      if (pending) clearTimeout(pending);
      unsubscribe();
      remove?.();
      reply.raw.end();
    };
    remove = streams.add(s.sid, end);
    if (!remove) return reply.code(503).header('retry-after', '30').type('text/plain').send('too many live pages open on this broker');

    reply.hijack();
    reply.raw.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    reply.raw.write('retry: 3000\n\n');
    const write = (chunk: string) => {
      if (!ended && !reply.raw.destroyed) reply.raw.write(chunk);
    };
    let kinds = new Set<string>();
    unsubscribe = feed.subscribe((c) => {
      kinds.add(c.kind);
      if (pending) return;
      pending = setTimeout(() => {
        pending = null;
        write(`event: changed\ndata: ${JSON.stringify({ kinds: [...kinds] })}\n\n`);
        kinds = new Set();
      }, COALESCE_MS);
    });
    const beat = setInterval(() => write(': keep-alive\n\n'), HEARTBEAT_MS);
    beat.unref();
    timers.push(beat);
    // The session's end ends the stream (setTimeout's limit is ~24.8 days; a session is far shorter).
    const left = Math.max(0, s.exp * 1000 - Date.now());
    const expiry = setTimeout(end, Math.min(left, 2 ** 31 - 1));
    expiry.unref();
    timers.push(expiry);
    req.raw.on('close', end);
    reply.raw.on('error', end);
  });
};
