// Composition root: config → store → approvals → identity → engines, http. What only some configs use (the
// HTTP listener, each engine and its SQL parser, Slack, the demo database) is imported when they are there.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { adminTokenFile, GENERATE, loadOrCreateAdminToken } from './admin-token.js';
import { Approvals } from './approvals/index.js';
import type { Config } from './config.js';
import { startLoginAudit } from './audit/logins.js';
import { createLoginGuard, createVerifier, LocalIssuer, RevocationService } from './identity/index.js';
import type { PostgresEngine } from './engines/postgres/index.js';
import type { Engine, EngineDeps } from './engines/engine.js';
import type { MysqlEngine } from './engines/mysql/index.js';
import { checkTargetPrivileges } from './engines/upstream-privileges.js';
import { UpstreamSecrets } from './engines/upstream-secret.js';
import { loadPostgresParser, startupSettingProblem } from './policy/index.js';
import { LivePolicy } from './policy/live.js';
import { loadMysqlParser } from './policy/mysql-grammars.js';
import { MaskingPolicy } from './masking/index.js';
import { Catalogs } from './catalog/index.js';
import { BrokerSession } from './session.js';
import { openStore, type Store } from './store/index.js';
import { openJournal } from './audit/journal/index.js';
import { approvalFleet, defaultReplicaId, isFleetStore, Lease, PgChannel, revocationFleet } from './fleet/index.js';
import { loadTls } from './tls.js';
import { Metrics } from './metrics/index.js';
import type { Target } from './types.js';

export interface Broker {
  config: Config;
  store: Store;
  /** Always there: without Slack, requests are decided through the CLI / HTTP API (admin_token). */
  approvals: Approvals;
  issuer: LocalIssuer | null;
  /** Revoke builds and tokens (jit revoke, /api/revocations, the Slack bot's /jit revoke). */
  revocations: RevocationService;
  postgres: PostgresEngine | null;
  mysql: MysqlEngine | null;
  http: FastifyInstance | null;
  /** Where each listener really listens (ports chosen by the OS when configured as 0). */
  addresses: { postgres: string | null; mysql: string | null; http: string | null };
  targets: ReadonlyMap<string, Target>;
  /** What GET /metrics serves (its own prom-client registry). */
  metrics: Metrics;
  /** The live policy: the store's newest version, switched without a restart (policy versions, issue 15). */
  policy: LivePolicy;
  /** Settles once every target's upstream account has been checked for more than least privilege (findings: /readyz warnings, logged at warn). */
  privilegeChecks: Promise<void>;
  /** Re-read the targets' upstream password files (SIGHUP); names the targets whose password changed. */
  reloadSecrets(reason: string): string[];
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
    // The PostgreSQL grammar (WebAssembly) is loaded before anything listens, and only for PostgreSQL targets.
    if (Object.values(config.targets).some((t) => t.engine === 'postgres')) await loadPostgresParser();

    // This broker's name in a fleet, recorded on its sessions and its metrics.
    const replicaId = config.replica_id ?? (process.env.JIT_REPLICA_ID || defaultReplicaId());
    const backing = await openStore(config.store);
    // Sessions and statements are recorded through the write-ahead journal; the indexer moves them into the store.
    const j = config.audit.journal;
    const store = await openJournal({
      dir: j.dir,
      durability: j.durability,
      segmentBytes: j.segment_bytes,
      store: backing,
      storeUrl: j.indexer === 'inline' || config.store.startsWith('sqlite::memory:') ? null : config.store,
      log: (msg, fields) => log.warn(fields ?? {}, msg),
    }).catch(async (e: unknown) => {
      await backing.close();
      throw e;
    });
    closers.push(async () => {
      await store.close();
      log.info({ ...store.writer.stats }, 'audit journal closed');
    });
    // GET /metrics: counted through hooks handed to the session core, the login audit, the engines and the approvals bus.
    const metrics = new Metrics({ replica: replicaId }).observeJournal({
      dir: j.dir,
      written: () => store.writer.position,
      indexed: () => store.indexed,
      stats: store.writer.stats,
    });
    closers.push(async () => metrics.close());
    // A fleet (a PostgreSQL store several brokers share): a lease, and a channel for approvals and revocations.
    const channel = isFleetStore(config.store) ? await PgChannel.open(config.store, replicaId, (msg, fields) => log.warn(fields ?? {}, msg)) : null;
    if (channel) closers.push(() => channel.close());
    // The only broker on its store ends what an earlier process left open; in a fleet the others' leases do that.
    if (!channel) {
      const stale = await store.endOpenSessions('the broker stopped while the session was open');
      if (stale) log.warn({ sessions: stale }, 'closed sessions left open by an earlier broker process');
    }

    // The live policy: the store's newest version (an empty store takes the config's rules as version 1).
    const livePolicy = await LivePolicy.start({
      store,
      config: { rules: config.rules, default: config.default, file: config.file, source: config.policy.source },
      channel,
      info: (msg, fields) => log.info(fields ?? {}, msg),
      warn: (msg, fields) => log.warn(fields ?? {}, msg),
    });
    closers.push(async () => livePolicy.stop());
    const rulesAtStart = livePolicy.holder.current.policy;

    const approvals = new Approvals({ store, fleet: channel ? approvalFleet(channel) : null, log: (msg, fields) => log.info(fields ?? {}, msg) });
    metrics.observeApprovals(approvals);
    // Who may revoke from Slack: identity.revokers, else whoever a review rule lists as an approver.
    const revokers = config.identity.revokers ?? [...new Set(rulesAtStart.rules.flatMap((r) => r.approvers ?? []))];
    const revocations = await RevocationService.open({
      store,
      revokers,
      fleet: channel ? revocationFleet(channel) : null,
      log: (msg, fields) => log.warn(fields ?? {}, msg),
    });
    await opts.onApprovals?.(approvals);
    // The Slack bot subscribes before stale requests are cancelled, so it updates their messages too.
    let bot: import('../bot/index.js').SlackBot | null = null;
    if (config.slack) {
      const { createSlackBot } = await import('../bot/index.js');
      const s = config.slack;
      bot = createSlackBot({
        config: {
          botToken: s.bot_token,
          signingSecret: s.signing_secret,
          appToken: s.app_token,
          channel: s.channel,
          apiUrl: s.api_url,
          consoleUrl: config.ui.enabled ? config.ui.public_url : undefined,
        },
        approvals,
        revocations,
        store,
        log: log.child({ component: 'slack' }),
      });
      const b = bot;
      await b.start();
      closers.push(() => b.stop());
    }
    // Closed before the bot stops: the bot still updates the messages of requests cancelled at shutdown.
    closers.push(() => approvals.close('the broker is shutting down'));
    if (channel) {
      // Heartbeats, and the sweep that ends what replicas silent longer than the lease left behind.
      const lease = new Lease({ store, approvals, replicaId, leaseSeconds: config.approvals.lease, log: (msg, fields) => log.warn(fields ?? {}, msg) });
      await lease.start();
      closers.push(() => lease.stop());
    } else {
      const staleApprovals = await approvals.recoverStale('broker restarted');
      if (staleApprovals.length)
        log.warn({ approvals: staleApprovals.map((r) => r.id) }, 'cancelled approval requests left pending by an earlier broker process');
    }
    // `admin_token: generate`: a random credential under data_dir, for the `jit` commands run beside the broker.
    const generatedAdminToken = config.admin_token === GENERATE;
    const adminToken = generatedAdminToken ? loadOrCreateAdminToken(config.data_dir) : (config.admin_token ?? null);
    if (generatedAdminToken)
      log.info(
        { file: adminTokenFile(config.data_dir) },
        'admin API token kept under data_dir (admin_token: generate): jit approvals / approve / deny read it; the admin API answers loopback clients only',
      );
    // Nobody could ever decide a request without the admin API or Slack: refuse reviews at once (fail closed).
    // (the web console decides too, when people sign in to it through OpenID Connect)
    const canDecide = Boolean(adminToken || config.slack || (config.ui.enabled && config.ui.oidc && config.listen.http));
    if (!canDecide && (rulesAtStart.default === 'review' || rulesAtStart.rules.some((r) => r.action === 'review')))
      log.warn('rules with action: review refuse their statements: set admin_token (jit approve / the HTTP API) or slack to decide them');

    const issuer = config.identity.local_issuer ? await LocalIssuer.loadOrCreate(join(config.data_dir, 'issuer.jwk'), config.identity.local_issuer_url) : null;
    const verifier = createVerifier({
      issuers: config.identity.issuers,
      local: issuer ? { issuer, audience: config.identity.audience } : undefined,
      clockSkewSeconds: config.identity.clock_skew,
      isRevoked: (id) => revocations.isRevoked(id),
    });
    const login = await createLoginGuard({ verifier, store, singleUse: config.identity.single_use, log: (msg, fields) => log.warn(fields ?? {}, msg) });
    // Every refused login is recorded (what its token claims, decoded untrusted; never the token) and logged.
    const loginAudit = await startLoginAudit({
      store,
      log: (msg, fields) => log.warn(fields ?? {}, msg),
      retentionSeconds: config.audit.login_retention,
      buildTemplate: (iss) => config.identity.issuers.find((i) => i.issuer === iss)?.build,
      metrics,
    });
    closers.push(async () => loginAudit.close());
    const tls = await loadTls(config.tls, config.data_dir);
    if (tls.generated) log.info({ cert: tls.certFile }, 'generated a self-signed TLS certificate');

    const targets = new Map<string, Target>();
    for (const [name, t] of Object.entries(config.targets)) {
      let upstream = t.upstream;
      if (upstream === 'demo') {
        const { startDemoProcess } = await import('./demo/process.js');
        const demo = await startDemoProcess(join(config.data_dir, 'demo'), (msg) => log.error(msg));
        closers.push(() => demo.close());
        upstream = demo.url;
        log.info({ target: name }, 'serving the built-in demo database (embedded PostgreSQL) for this target');
      }
      targets.set(name, { name, engine: t.engine, upstream });
    }
    // upstream_password_file: read now (unreadable: no start), then kept current on the shared Targets themselves.
    const secrets = new UpstreamSecrets(
      Object.entries(config.targets).flatMap(([name, t]) => (t.upstream_password_file ? [{ target: targets.get(name)!, file: t.upstream_password_file }] : [])),
      { info: (msg, fields) => log.info(fields, msg), error: (msg, fields) => log.error(fields, msg) },
    );
    closers.push(async () => secrets.close());
    metrics.targets(targets.values());

    const policy = livePolicy.holder;
    const { sample_rows: rows, sample_bytes: bytes } = config.audit;
    const sampling = rows > 0 && bytes > 0 ? { rows, bytes } : null;
    const sessionLog = (msg: string, fields?: Record<string, unknown>) => log.warn(fields ?? {}, msg);
    // What each target's functions, operators and views are: statements are judged by them (broker/catalog).
    const catalog = new Catalogs({ ttlSeconds: (name) => config.targets[name]?.catalog_ttl ?? 60, log: sessionLog });
    // Result masking (null without rules); a decision by an `exempt_masking` policy rule leaves its result unmasked.
    const masking = MaskingPolicy.create(config.masking, { dataDir: config.data_dir });
    // A database role per session where a target has session_roles; their sweepers drop what a crash left behind.
    const sessionRoles = Object.values(config.targets).some((t) => t.session_roles)
      ? await (await import('./engines/session-roles/index.js')).startSessionRoles(targets.values(), (n) => config.targets[n]?.session_roles, store, sessionLog)
      : null;
    if (sessionRoles) closers.push(() => sessionRoles.close());
    // What every engine is given (engines/engine.ts); each engine adds its protocol's own.
    const engineDeps: Omit<EngineDeps, 'targets'> = {
      verify: (token) => login.verify(token),
      loginRefused: (refusal, token) => loginAudit.refused(refusal, token),
      openSession: async (identity, target, client) => {
        const s = await BrokerSession.open(
          {
            store,
            policy,
            approvals: canDecide ? approvals : null,
            sampling,
            log: sessionLog,
            revoked: (i) => revocations.revokedReason(i),
            catalog,
            metrics,
            replicaId,
            sessionRoles: sessionRoles?.provider ?? null,
          },
          identity,
          target,
          client,
        );
        await login.opened(identity, s.id);
        log.info(
          { session: s.id, subject: identity.subject, build: identity.build, target: target.name, client: client.address, engine: target.engine },
          'session opened',
        );
        return s;
      },
      upstreamFailed: (t) => {
        metrics.upstreamConnectFailed(t);
        secrets.connectFailed(t);
      },
      masking,
      tls: tls.context,
      plaintext: config.tls.plaintext,
      maxMessageBytes: 256 * 1024 * 1024,
      // Login deadline and connection caps, per database listener.
      limits: { loginTimeoutMs: config.listen.login_timeout * 1000, maxLogins: config.listen.max_logins, maxClients: config.listen.max_clients },
      log: sessionLog,
    };
    const targetsOf = (engine: Target['engine']) => new Map([...targets].filter(([, t]) => t.engine === engine));
    /** A started engine: closed at shutdown, its sessions ended by revocations. */
    const started = <E extends Engine>(name: string, e: E): E => {
      closers.push(() => e.close());
      revocations.track(() => [...e.connections].map((c) => ({ identity: c.identity, sessionId: c.sessionId, end: (m: string) => c.revoke(m) })));
      log.info({ address: `${e.address.host}:${e.address.port}` }, `${name} listener ready`);
      return e;
    };
    let postgres: PostgresEngine | null = null;
    if (config.listen.postgres) {
      const { startPostgresEngine } = await import('./engines/postgres/index.js');
      postgres = started(
        'postgres',
        await startPostgresEngine({ ...engineDeps, targets: targetsOf('postgres'), startupSettingProblem }, config.listen.postgres),
      );
    }

    let mysql: MysqlEngine | null = null;
    const myTargets = targetsOf('mysql');
    if (myTargets.size > 0) {
      const { checkMysqlTarget, mysqlTargetNameWarning, startMysqlEngine } = await import('./engines/mysql/index.js');
      for (const t of myTargets.values()) {
        checkMysqlTarget(t);
        const named = mysqlTargetNameWarning(t);
        if (named) log.warn({ target: t.name }, named);
      }
      if (config.listen.mysql) {
        // LOAD DATA LOCAL INFILE is `admin`: offer it to clients only if a rule could let one run.
        const localInfile = rulesAtStart.default !== 'deny' || rulesAtStart.rules.some((r) => r.action !== 'deny' && (!r.kinds || r.kinds.includes('admin')));
        loadMysqlParser(); // its grammar now, not at the first statement
        mysql = started('mysql', await startMysqlEngine({ ...engineDeps, targets: myTargets, localInfile }, config.listen.mysql));
      }
    }

    /** What /readyz reports beside readiness: upstream accounts with more than least privilege. */
    const warnings: string[] = [];
    let http: FastifyInstance | null = null;
    let httpAddress: string | null = null;
    if (config.listen.http) {
      const { buildHttp } = await import('./http/server.js');
      http = await buildHttp({
        issuer,
        approvals,
        store,
        adminToken,
        adminLoopbackOnly: generatedAdminToken,
        metrics: { metrics, public: config.metrics.public },
        revocations,
        policy: { live: livePolicy, targets: [...targets.keys()] },
        exchange:
          issuer && config.identity.exchange.enabled
            ? {
                issuer,
                verifier,
                audience: config.identity.audience,
                targets: [...targets.keys()],
                defaultTtl: config.identity.default_ttl,
                maxTtl: config.identity.exchange.max_ttl ?? config.identity.max_ttl,
                maxDepth: config.identity.exchange.max_depth,
              }
            : null,
        log: (msg, fields) => log.info(fields ?? {}, msg),
        // The web console at /ui/ (ui.enabled, default on): sign-in through ui.oidc, or the admin token from loopback.
        ui: config.ui.enabled
          ? {
              config: config.ui,
              dataDir: config.data_dir,
              approvals,
              store,
              adminToken,
              activePolicy: () => livePolicy.holder.current.version,
              log: (msg, fields) => log.info({ component: 'ui', ...fields }, msg),
            }
          : undefined,
        logger: log.child({ component: 'http' }),
        warnings: () => [...warnings, ...secrets.warnings()],
        ready: async () => {
          await store.ping();
          if (config.listen.postgres && !postgres) throw new Error('the postgres listener is not running');
          if (config.listen.mysql && myTargets.size > 0 && !mysql) throw new Error('the mysql listener is not running');
        },
      });
      const h = http;
      if (bot) await bot.mount(h);
      httpAddress = await h.listen({ host: config.listen.http.host, port: config.listen.http.port });
      closers.push(() => h.close());
      log.info({ address: httpAddress }, 'http listener ready');
    }

    // After start, never blocking or failing it: an account with more than least privilege (or one that
    // cannot be checked) is a warning. The demo database is skipped: it is a throwaway.
    const privilegeChecks = Promise.all(
      [...targets.values()]
        .filter((t) => config.targets[t.name]?.upstream !== 'demo')
        .map(async (t) => {
          const warning = await checkTargetPrivileges(t, Boolean(config.targets[t.name]?.session_roles));
          if (!warning) return;
          warnings.push(warning);
          log.warn({ target: t.name }, warning);
        }),
    ).then(() => {});

    return {
      config,
      store,
      approvals,
      issuer,
      revocations,
      postgres,
      mysql,
      http,
      targets,
      metrics,
      policy: livePolicy,
      privilegeChecks,
      reloadSecrets: (reason) => secrets.reload(reason),
      addresses: {
        postgres: postgres ? `${postgres.address.host}:${postgres.address.port}` : null,
        mysql: mysql ? `${mysql.address.host}:${mysql.address.port}` : null,
        http: httpAddress,
      },
      async close() {
        await closeAll();
      },
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}
