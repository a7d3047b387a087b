// Composition root: config → store → approvals → identity → engines, http.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { Approvals } from './approvals/index.js';
import type { Config } from './config.js';
import { buildHttp } from './http/server.js';
import { createVerifier, LocalIssuer } from './identity/index.js';
import { startPostgresEngine, type PostgresEngine } from './engines/postgres/index.js';
import { loadPostgresParser, startupSettingProblem } from './policy/index.js';
import { BrokerSession } from './session.js';
import { openStore, type Store } from './store/index.js';
import { loadTls } from './tls.js';
import type { Target } from './types.js';

export interface Broker {
  config: Config;
  store: Store;
  /** Always there: without Slack, requests are decided through the CLI / HTTP API (admin_token). */
  approvals: Approvals;
  issuer: LocalIssuer | null;
  postgres: PostgresEngine | null;
  http: FastifyInstance | null;
  /** Where each listener really listens (ports chosen by the OS when configured as 0). */
  addresses: { postgres: string | null; http: string | null };
  targets: ReadonlyMap<string, Target>;
  close(reason?: string): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /**
   * Called with the approvals before requests left pending by an earlier broker process are
   * cancelled: the place to subscribe (the Slack bot) so their `updated` events are seen.
   */
  onApprovals?: (approvals: Approvals) => void | Promise<void>;
}

export async function startBroker(config: Config, opts: StartOptions = {}): Promise<Broker> {
  const log = opts.logger ?? pino({ level: process.env.JIT_LOG_LEVEL ?? 'info' }, pino.destination(2));
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const c of closers.reverse()) await c().catch((e: unknown) => log.error({ err: e }, 'error while closing'));
  };
  try {
    mkdirSync(config.data_dir, { recursive: true });
    await loadPostgresParser();

    const store = await openStore(config.store);
    closers.push(() => store.close());
    const stale = await store.endOpenSessions('the broker stopped while the session was open');
    if (stale) log.warn({ sessions: stale }, 'closed sessions left open by an earlier broker process');

    const approvals = new Approvals({ store, log: (msg, fields) => log.info(fields ?? {}, msg) });
    await opts.onApprovals?.(approvals);
    // The Slack bot subscribes before stale requests are cancelled, so it updates their messages too.
    let bot: import('../bot/index.js').SlackBot | null = null;
    if (config.slack) {
      const { createSlackBot } = await import('../bot/index.js');
      const s = config.slack;
      bot = createSlackBot({
        config: { botToken: s.bot_token, signingSecret: s.signing_secret, appToken: s.app_token, channel: s.channel, apiUrl: s.api_url },
        approvals,
        store,
        log: log.child({ component: 'slack' }),
      });
      const b = bot;
      await b.start();
      closers.push(() => b.stop());
    }
    // Closed before the bot stops: the bot still updates the messages of requests cancelled at shutdown.
    closers.push(() => approvals.close('the broker is shutting down'));
    const staleApprovals = await approvals.recoverStale('broker restarted');
    if (staleApprovals.length) log.warn({ approvals: staleApprovals.map((r) => r.id) }, 'cancelled approval requests left pending by an earlier broker process');
    // Nobody could ever decide a request without the admin API or Slack: refuse reviews at once (fail closed).
    const canDecide = Boolean(config.admin_token || config.slack);
    if (!canDecide && (config.default === 'review' || config.rules.some((r) => r.action === 'review')))
      log.warn('rules with action: review refuse their statements: set admin_token (jit approve / the HTTP API) or slack to decide them');

    const issuer = config.identity.local_issuer
      ? await LocalIssuer.loadOrCreate(join(config.data_dir, 'issuer.jwk'), config.identity.local_issuer_url)
      : null;
    const verifier = createVerifier({
      issuers: config.identity.issuers,
      local: issuer ? { issuer, audience: config.identity.audience } : undefined,
      clockSkewSeconds: config.identity.clock_skew,
    });
    const tls = await loadTls(config.tls, config.data_dir);
    if (tls.generated) log.info({ cert: tls.certFile }, 'generated a self-signed TLS certificate');

    const targets = new Map<string, Target>();
    for (const [name, t] of Object.entries(config.targets)) {
      let upstream = t.upstream;
      if (upstream === 'demo') {
        const { startDemoProcess } = await import('./engines/postgres/demo-process.js');
        const demo = await startDemoProcess(join(config.data_dir, 'demo'), (msg) => log.error(msg));
        closers.push(() => demo.close());
        upstream = demo.url;
        log.info({ target: name }, 'serving the built-in demo database (embedded PostgreSQL) for this target');
      }
      targets.set(name, { name, engine: t.engine, upstream });
    }

    const policy = { rules: config.rules, default: config.default };
    const sessionLog = (msg: string, fields?: Record<string, unknown>) => log.warn(fields ?? {}, msg);
    let postgres: PostgresEngine | null = null;
    if (config.listen.postgres) {
      const pgTargets = new Map([...targets].filter(([, t]) => t.engine === 'postgres'));
      postgres = await startPostgresEngine(
        {
          targets: pgTargets,
          verify: (token) => verifier.verify(token),
          openSession: async (identity, target, client) => {
            const s = await BrokerSession.open({ store, policy, approvals: canDecide ? approvals : null, log: sessionLog }, identity, target, client);
            log.info({ session: s.id, subject: identity.subject, build: identity.build, target: target.name, client: client.address }, 'session opened');
            return s;
          },
          tls: tls.context,
          plaintext: config.tls.plaintext,
          maxMessageBytes: 256 * 1024 * 1024,
          startupSettingProblem,
          log: sessionLog,
        },
        config.listen.postgres,
      );
      const pg = postgres;
      closers.push(() => pg.close());
      log.info({ address: `${pg.address.host}:${pg.address.port}` }, 'postgres listener ready');
    }

    let http: FastifyInstance | null = null;
    let httpAddress: string | null = null;
    if (config.listen.http) {
      http = await buildHttp({
        issuer,
        approvals,
        adminToken: config.admin_token ?? null,
        logger: false,
        ready: async () => {
          await store.ping();
          if (config.listen.postgres && !postgres) throw new Error('the postgres listener is not running');
        },
      });
      const h = http;
      if (bot) await bot.mount(h);
      httpAddress = await h.listen({ host: config.listen.http.host, port: config.listen.http.port });
      closers.push(() => h.close());
      log.info({ address: httpAddress }, 'http listener ready');
    }

    return {
      config,
      store,
      approvals,
      issuer,
      postgres,
      http,
      targets,
      addresses: { postgres: postgres ? `${postgres.address.host}:${postgres.address.port}` : null, http: httpAddress },
      async close() {
        await closeAll();
      },
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}
