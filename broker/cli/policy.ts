// `jit policy`: `check` classifies SQL and decides it as the broker would, from the config alone (or a stored
// version, or with --catalog-from against what a target's catalog says); `apply`, `show`, `history`, `diff`,
// `rollback` handle policy versions (policy-versions.ts), `apply --dry-run` tries a file on history.
import { InvalidArgumentError, type Command } from 'commander';
import type { Config } from '../config.js';
import type { Target } from '../types.js';
import { collect, parseClaim } from './args.js';
import { formatTable } from './format.js';

export function registerPolicyCommands(program: Command, config: () => Config): void {
  const policy = program.command('policy').description('the policy: check SQL against it, apply a new version, show and roll back versions');
  policy
    .command('check')
    .description('classify SQL and decide it as the broker would, for each statement and for the whole string')
    .requiredOption('--target <name>', 'the target the statement is for')
    .option('--claim <k=v>', 'a claim of the identity, repeatable', collect, [])
    .option('--sub <subject>', 'subject of the identity', 'policy-check')
    .option('--build <id>', 'build id of the identity')
    .option('--expect <action>', 'exit 1 unless the whole string is decided so (allow, deny or review)')
    .option(
      '--catalog-from <target>',
      "judge functions, operators, views and partitioned tables by that target's catalog (read over its upstream URL), as the broker does",
    )
    .option('--version <n>', "decide with stored policy version n (the running broker's, else the store's) instead of the config's rules")
    .option('--url <url>', 'with --version: the broker HTTP API (default: listen.http of the config)')
    .option('--json', 'machine-readable output')
    .argument('[sql]', 'the SQL text (default: read standard input)')
    .action(
      async (
        sqlArg: string | undefined,
        o: {
          target: string;
          claim: string[];
          sub: string;
          build?: string;
          expect?: string;
          json?: boolean;
          catalogFrom?: string;
          version?: string;
          url?: string;
        },
      ) => {
        const c = config();
        const target = c.targets[o.target];
        if (!target) throw new InvalidArgumentError(`no target '${o.target}' in the config (targets: ${Object.keys(c.targets).join(', ')})`);
        const from = o.catalogFrom === undefined ? undefined : c.targets[o.catalogFrom];
        if (o.catalogFrom !== undefined && !from)
          throw new InvalidArgumentError(`no target '${o.catalogFrom}' in the config for --catalog-from (targets: ${Object.keys(c.targets).join(', ')})`);
        if (from && from.engine !== target.engine)
          throw new InvalidArgumentError(`--catalog-from ${o.catalogFrom} is a ${from.engine} target; ${o.target} is ${target.engine}`);
        if (o.expect && !['allow', 'deny', 'review'].includes(o.expect)) throw new InvalidArgumentError('--expect takes allow, deny or review');
        const sql = sqlArg ?? (await readStdin());
        const { checkPolicy } = await import('../policy/check.js');
        let catalog: { provider: import('../catalog/index.js').CatalogProvider; target: Target } | undefined;
        if (from && o.catalogFrom !== undefined) {
          const { Catalogs } = await import('../catalog/index.js');
          // The demo database lives inside a running broker only: there is no catalog to read here.
          const loaders = from.upstream === 'demo' ? { postgres: () => Promise.reject(new Error('the demo database runs only inside the broker')) } : {};
          const { upstreamOf } = await import('../engines/upstream-secret.js'); // the URL with its upstream_password_file's password
          const upstream = from.upstream === 'demo' ? from.upstream : upstreamOf(from);
          catalog = { provider: new Catalogs({ loaders }), target: { name: o.catalogFrom, engine: from.engine, upstream } };
        }
        const rules =
          o.version === undefined ? { rules: c.rules, default: c.default } : await (await import('./policy-versions.js')).storedRules(o.version, o.url, c);
        const result = await checkPolicy(
          rules,
          target.engine,
          o.target,
          sql,
          { subject: o.sub, build: o.build ?? null, claims: Object.fromEntries(o.claim.map(parseClaim)) },
          catalog,
        );
        if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        else {
          process.stdout.write(
            formatTable(
              ['DECISION', 'RULE', 'KINDS', 'STATEMENT'],
              result.statements.map((st) => [st.action, st.ruleId ?? '(default)', st.kinds.join(','), st.sql.replace(/\s+/g, ' ').slice(0, 100)]),
            ),
          );
          if (result.error) process.stdout.write(`parse error: ${result.error}\n`);
          for (const st of result.statements) if (st.reason) process.stdout.write(`why: ${st.sql.replace(/\s+/g, ' ').slice(0, 60)}: ${st.reason}\n`);
          const cat = result.catalog;
          if (cat && !cat.read)
            process.stdout.write(
              `catalog: could not read the catalog of target '${cat.target}' (${cat.error}): what needs it is decided as unknown, as the broker would\n`,
            );
          else if (cat)
            process.stdout.write(
              `catalog: read from target '${cat.target}': ${cat.functions} functions, ${cat.views} views or tables with row security, ${cat.parents ?? 0} partitioned or inheritance parent tables\n`,
            );
          const under = 'version' in rules ? ` under policy version ${rules.version}` : '';
          process.stdout.write(`=> ${result.action}${result.ruleId ? ` (rule ${result.ruleId})` : ' (default)'}${under}: ${result.message}\n`);
        }
        if (o.expect && o.expect !== result.action) {
          process.stderr.write(`expected ${o.expect}, got ${result.action}\n`);
          process.exitCode = 1;
        }
      },
    );
  registerPolicyVersionCommands(policy, config);
  // `apply FILE`: a new version (policy-versions.ts); `--dry-run`: decide the recorded statements again under FILE's rules (policy-dry-run.ts).
  policy
    .command('apply')
    .description(
      'apply the rules in FILE (a YAML with rules: and default:, or a whole jit.yaml); with --dry-run, only show which recorded decisions would change',
    )
    .argument('<file>', 'the policy file')
    .option('--dry-run', 'decide the statements recorded in the window again under the rules in FILE and print what would change; store nothing')
    .option('--since <when>', 'the window: a duration back from now (24h, 7d) or a date (2025-01-31, 2025-01-31T12:00:00Z)', '7d')
    .option('--target <name>', 'only the statements of this target')
    .option('--examples <n>', 'examples shown per change', (v) => Number.parseInt(v, 10), 5)
    .option('--catalog', "judge functions, views and partitioned tables by each target's catalog as it is now (read over its upstream URL)")
    .option('--fail-on-change', 'exit 1 when any decision would change (for CI)')
    .option('--message <text>', 'why: recorded with the new version')
    .option('--url <url>', 'the broker HTTP API (default: listen.http of the config; without it, the store of the config when no broker answers)')
    .option('--json', 'machine-readable output')
    .action(async (file: string, o: import('./policy-dry-run.js').DryRunOptions & import('./policy-versions.js').ApplyOptions & { dryRun?: boolean }) => {
      if (!o.dryRun) return (await import('./policy-versions.js')).policyApply(file, o, config());
      const { policyDryRun } = await import('./policy-dry-run.js');
      await policyDryRun(file, o, config());
    });
}

/** Policy versions (policy-versions.ts): show, history, diff, rollback — through the running broker, else the store. */
function registerPolicyVersionCommands(policy: Command, config: () => Config): void {
  const versions = () => import('./policy-versions.js');
  const url = ['--url <url>', 'the broker HTTP API (default: listen.http of the config; without it, the store of the config when no broker answers)'] as const;
  policy
    .command('show')
    .description('the active policy version (or --version N): who applied it, when, and its rules as YAML')
    .option('--version <n>', 'a stored version instead of the active one')
    .option(...url)
    .option('--json', 'machine-readable output')
    .action(async (o: { version?: string; url?: string; json?: boolean }) => (await versions()).policyShow(o, config()));
  policy
    .command('history')
    .description('every stored policy version, newest first')
    .option(...url)
    .option('--json', 'machine-readable output')
    .action(async (o: { url?: string; json?: boolean }) => (await versions()).policyHistory(o, config()));
  policy
    .command('diff')
    .description('what changes from policy version A to B: rules added, removed, changed (by id), the default')
    .argument('<a>', 'a version')
    .argument('<b>', 'another version')
    .option(...url)
    .option('--json', 'machine-readable output')
    .action(async (a: string, b: string, o: { url?: string; json?: boolean }) => (await versions()).policyDiff(a, b, o, config()));
  policy
    .command('rollback')
    .description("apply version N's rules again, as a new version (history is never rewritten)")
    .argument('<n>', 'the version whose rules to restore')
    .option('--message <text>', 'why (default: rollback to version N)')
    .option(...url)
    .option('--json', 'machine-readable output')
    .action(async (n: string, o: { message?: string; url?: string; json?: boolean }) => (await versions()).policyRollback(n, o, config()));
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
