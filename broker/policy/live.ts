// The live policy of one broker: at start, the store's newest version (an empty store takes the config's rules
// as version 1; `policy.source: config` applies the file when it differs); then every new version, whether
// applied here (POST /api/policy: switched at once, and announced to the fleet), on another replica (its notice)
// or straight into the store (`jit policy apply` without a broker: the poll, every 500 ms).
import type { NewPolicyVersion, PolicyVersion, Store } from '../store/types.js';
import { activeFrom, POLICY_TOPIC, PolicyHolder, watchPolicy } from './holder.js';
import { parsePolicyDocument, samePolicy, toDocument, type ValidPolicy } from './versions.js';

type Log = (msg: string, fields?: Record<string, unknown>) => void;

export type PolicyStore = Pick<Store, 'addPolicyVersion' | 'getPolicyVersion' | 'listPolicyVersions' | 'activePolicyVersion'>;

export interface LivePolicyOptions {
  store: PolicyStore;
  /** The config's `rules:`/`default:`, its file (for messages) and `policy.source`. */
  config: { rules: ValidPolicy['rules']; default: ValidPolicy['default']; file: string | null; source: 'store' | 'config' };
  /** A fleet's channel: a version applied here is announced, one applied elsewhere read at once. */
  channel?: { notify(topic: string, payload: string): void; listen(topic: string, listener: (payload: string) => void): () => void } | null;
  /** How often the store's newest version is read. Default 500 ms. */
  pollMs?: number;
  /** Notices (a version applied, a switch). */
  info: Log;
  /** The config and the store disagree; a stored version that does not validate. */
  warn: Log;
}

/** Stored documents are validated again when read; their targets were checked when applied (a rule naming a target that is gone never matches). */
export const storedPolicy = (doc: unknown): ValidPolicy => parsePolicyDocument(doc, null);

export class LivePolicy {
  private constructor(
    readonly holder: PolicyHolder,
    private readonly o: LivePolicyOptions,
    private readonly watch: { stop(): void; check(): Promise<void> },
  ) {}

  /** Bootstraps the store from the config when it must (see the file's comment), then follows its newest version. */
  static async start(o: LivePolicyOptions): Promise<LivePolicy> {
    const fromConfig = { rules: o.config.rules, default: o.config.default };
    const file = o.config.file ?? 'the embedded default config';
    let active = await o.store.getPolicyVersion();
    if (!active) {
      active = await o.store.addPolicyVersion({ rules: toDocument(fromConfig), author: 'config', message: `bootstrap from ${file}`, appliedAt: new Date() });
      o.info('policy: the store had no policy version: the config rules are version 1', { version: active.version, file });
    } else if (!samePolicy(fromConfig, active.rules)) {
      if (o.config.source === 'config') {
        const previous = active.version;
        active = await o.store.addPolicyVersion({
          rules: toDocument(fromConfig),
          author: 'config',
          message: `applied from ${file} at start (policy.source: config)`,
          appliedAt: new Date(),
        });
        o.info('policy: the config rules differ from the active version and policy.source is config: applied as a new version', {
          version: active.version,
          previous,
          file,
        });
        o.channel?.notify(POLICY_TOPIC, String(active.version));
      } else {
        o.warn(
          `policy: the rules in ${file} differ from the active policy version ${active.version} in the store, which wins (policy.source: store); to make the file's rules live, run: jit policy apply ${o.config.file ?? 'jit.yaml'}`,
          { version: active.version, author: active.author, file },
        );
      }
    }
    const holder = new PolicyHolder(activeFrom(active, storedPolicy));
    const watch = watchPolicy({ holder, store: o.store, toPolicy: storedPolicy, intervalMs: o.pollMs, channel: o.channel, log: o.warn });
    holder.onChange((next, prev) => o.info('policy: a new version is live', { version: next.version, previous: prev.version, author: next.author }));
    return new LivePolicy(holder, o, watch);
  }

  /** Stores `v` as a new version and makes it live here at once; the fleet's other replicas are told. */
  async apply(v: Omit<NewPolicyVersion, 'appliedAt'>): Promise<PolicyVersion> {
    const policy = storedPolicy(v.rules);
    const stored = await this.o.store.addPolicyVersion({ ...v, rules: toDocument(policy), appliedAt: new Date() });
    this.holder.set({ version: stored.version, policy, author: stored.author, appliedAt: stored.appliedAt });
    this.o.channel?.notify(POLICY_TOPIC, String(stored.version));
    return stored;
  }

  /** Reads the store's newest version now (tests, and after a version was stored by someone else). */
  check(): Promise<void> {
    return this.watch.check();
  }

  stop(): void {
    this.watch.stop();
  }
}
