// The Slack bot: a client of approvals and the store. createSlackBot wires the Bolt app, the approval
// messages (notify.ts), the buttons and the Deny modal (actions.ts) and /jit (command.ts).
import type { webApi } from '@slack/bolt';
import type { FastifyInstance } from 'fastify';
import { registerActions } from './actions.js';
import { buildApp } from './app.js';
import { registerCommand } from './command.js';
import { Notifier } from './notify.js';
import { Directory } from './people.js';
import type { ApprovalsPort, BotLog, RevocationsPort, SlackBotConfig, StorePort } from './ports.js';

export type { ApprovalsPort, BotLog, MessageRef, RevocationsPort, SlackBotConfig, StorePort } from './ports.js';

export interface SlackBotDeps {
  config: SlackBotConfig;
  approvals: ApprovalsPort;
  store: StorePort;
  /** `/jit revoke`: the broker's revocation service (optional). */
  revocations?: RevocationsPort;
  log: BotLog;
  /** Tuning, mostly for tests. */
  options?: {
    /** Web API retry policy (default: 6 retries, 1 s doubling to 30 s; Retry-After always honoured). */
    retryConfig?: webApi.RetryOptions;
    /** Rows per /jit reply (default 20). */
    listLimit?: number;
    /** How long user e-mails and user-group members are cached (default 5 minutes). */
    cacheTtlMs?: number;
    /** The slash command's name (default `/jit`). */
    command?: string;
  };
}

export interface SlackBot {
  /** HTTP mode: adds POST /slack/events to the broker's fastify (call before it listens). No-op in Socket Mode. */
  mount(fastify: FastifyInstance): Promise<void>;
  /** Subscribes to approval events, posts pending requests not yet posted, and connects in Socket Mode. */
  start(): Promise<void>;
  /** Unsubscribes, lets in-flight Slack calls finish (up to 5 s), disconnects in Socket Mode. */
  stop(): Promise<void>;
}

export function createSlackBot(deps: SlackBotDeps): SlackBot {
  const { config, approvals, store, revocations, log, options = {} } = deps;
  const { app, receiver, client } = buildApp(config, log, options.retryConfig);
  const directory = new Directory(client, log, options.cacheTtlMs);
  const notifier = new Notifier(client, approvals, directory, config.channel, log, config.consoleUrl);
  registerActions(app, { client, approvals, directory, log });
  registerCommand(app, { approvals, store, revocations, directory, log, limit: options.listLimit ?? 20, name: options.command ?? '/jit' });

  let unsubscribe: (() => void) | null = null;
  let started = false;
  return {
    async mount(fastify) {
      if (!receiver) {
        log.info({}, 'slack: Socket Mode, no HTTP route mounted');
        return;
      }
      await receiver.mount(fastify);
    },
    async start() {
      if (started) return;
      started = true;
      // The guard matters when `on` returns no unsubscribe function.
      unsubscribe = approvals.on((e) => started && !(e.type === 'updated' && e.remote) && notifier.onEvent(e)) ?? null;
      if (config.appToken) await app.start();
      try {
        await notifier.catchUp();
      } catch (e) {
        log.warn({ err: e }, 'slack: could not list pending requests at startup');
      }
      log.info({ channel: config.channel, mode: config.appToken ? 'socket' : 'http' }, 'slack bot started');
    },
    async stop() {
      if (!started) return;
      started = false;
      unsubscribe?.();
      unsubscribe = null;
      await notifier.idle();
      if (config.appToken) await app.stop();
    },
  };
}
