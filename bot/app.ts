// The Bolt app: HTTP mode (our fastify-mounted receiver) or Socket Mode (when an app token is set),
// a single-workspace authorize that needs no network, and the WebClient the bot talks to Slack with.
import { App, LogLevel, webApi, type Logger } from '@slack/bolt';
import { FastifyReceiver } from './receiver.js';
import type { BotLog, SlackBotConfig } from './ports.js';

export interface BuiltApp {
  app: App;
  /** Null in Socket Mode. */
  receiver: FastifyReceiver | null;
  /** For every Web API call the bot makes (posts, updates, lookups), with retries. */
  client: webApi.WebClient;
}

/**
 * Rate limits (Retry-After honoured by the WebClient itself), 5xx and network errors are retried:
 * 6 retries, 1 s doubling to 30 s (about 1½ minutes in all).
 */
export const DEFAULT_RETRY: webApi.RetryOptions = { retries: 6, factor: 2, minTimeout: 1000, maxTimeout: 30_000, randomize: true };

/** Bolt's logger interface on top of the broker's pino-style logger. */
export function boltLogger(log: BotLog): Logger {
  let level: LogLevel = LogLevel.INFO;
  const order = [LogLevel.DEBUG, LogLevel.INFO, LogLevel.WARN, LogLevel.ERROR];
  const at = (l: LogLevel) => order.indexOf(l) >= order.indexOf(level);
  const text = (msg: unknown[]) => msg.map((m) => (typeof m === 'string' ? m : m instanceof Error ? m.message : JSON.stringify(m))).join(' ');
  return {
    debug: (...msg: unknown[]) => at(LogLevel.DEBUG) && log.debug({ component: 'slack' }, text(msg)),
    info: (...msg: unknown[]) => at(LogLevel.INFO) && log.info({ component: 'slack' }, text(msg)),
    warn: (...msg: unknown[]) => at(LogLevel.WARN) && log.warn({ component: 'slack' }, text(msg)),
    error: (...msg: unknown[]) => at(LogLevel.ERROR) && log.error({ component: 'slack' }, text(msg)),
    setLevel: (l: LogLevel) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => {},
  };
}

export function buildApp(config: SlackBotConfig, log: BotLog, retryConfig: webApi.RetryOptions = DEFAULT_RETRY): BuiltApp {
  const logger = boltLogger(log);
  const clientOptions: webApi.WebClientOptions = {
    logger,
    retryConfig,
    timeout: 10_000,
    ...(config.apiUrl ? { slackApiUrl: config.apiUrl.endsWith('/') ? config.apiUrl : `${config.apiUrl}/` } : {}),
  };
  const client = new webApi.WebClient(config.botToken, clientOptions);
  // `token` would make Bolt call auth.test from the constructor (an unhandled rejection when Slack is
  // unreachable) or on every request; the bot needs no bot user id, so authorize returns the token only.
  const authorize = async () => ({ botToken: config.botToken });
  const common = { authorize, logger, logLevel: LogLevel.INFO, clientOptions, ignoreSelf: false, convoStore: false as const };
  if (config.appToken) {
    const app = new App({ ...common, socketMode: true, appToken: config.appToken });
    return { app, receiver: null, client };
  }
  const receiver = new FastifyReceiver({ signingSecret: config.signingSecret, log });
  const app = new App({ ...common, receiver });
  return { app, receiver, client };
}
