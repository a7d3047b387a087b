// What the bot needs from the rest of the broker, as small interfaces of its own: the real Approvals
// class and Store plug in here, tests plug in small in-memory versions.
import type { ApprovalEvent, ApprovalRequest, DecisionInput, DecisionResult } from '../broker/approvals/types.js';
import type { Store } from '../broker/store/index.js';

type MaybePromise<T> = T | Promise<T>;

/** Where the bot posted a request: channel id + message ts. */
export interface MessageRef {
  channel: string;
  ts: string;
}

export interface ApprovalsPort {
  /** A person's decision; checks (state, approvers, own request) again and says what happened. */
  decide(id: string, input: DecisionInput): Promise<DecisionResult>;
  /** One request (pending or ended), or null/undefined when unknown. */
  get(id: string): MaybePromise<ApprovalRequest | null | undefined>;
  /** Requests still waiting for a decision. */
  pending(): MaybePromise<ApprovalRequest[]>;
  /** Remembers where the request was posted, so any bot instance can update it later (result ignored). */
  setMessage(id: string, ref: MessageRef): MaybePromise<unknown>;
  /** Subscribes to requested/updated events; may return an unsubscribe function. */
  // biome-ignore lint/suspicious/noConfusingVoidType: subscribers may return an unsubscribe function or nothing (tests pass () => {})
  on(listener: (event: ApprovalEvent) => void): (() => void) | void;
}

/** The store's read side, as the /jit command uses it (`/jit policy`: the active policy version, when the store keeps them). */
export type StorePort = Pick<Store, 'listSessions' | 'getSession' | 'listStatements'> & Partial<Pick<Store, 'getPolicyVersion'>>;

/** A pino-compatible logger (the broker passes its pino instance). */
export interface BotLog {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface SlackBotConfig {
  botToken: string;
  signingSecret: string;
  /** Socket Mode (no public HTTP endpoint) when set: `xapp-…`. */
  appToken?: string;
  /** Channel the approval messages go to (id `C…`, or `#name`). */
  channel: string;
  /** Web API base URL (default `https://slack.com/api/`); tests point it at a local fake. */
  apiUrl?: string;
  /** The broker's public URL (`ui.public_url`): approval messages link to the request's page in the web console. */
  consoleUrl?: string;
}

/** What `/jit revoke` needs of the broker's revocation service (broker/identity/revocation.ts). */
export interface RevocationsPort {
  /** Who may revoke: Slack user ids, e-mails, user groups; empty = anyone who may use the bot. */
  readonly revokers: readonly string[];
  revoke(input: {
    build?: string | null;
    reason: string;
    by: string;
    email?: string | null;
    groups?: string[];
  }): Promise<{ ok: true; ended: string[] } | { ok: false; code: string; message: string }>;
}
