// The error a bad config file raises, on its own: the `jit` command reports it (exit 2) without loading the
// config's schema (zod, yaml) for commands that never read a config (`jit --help`, `jit --version`).
export class ConfigError extends Error {
  constructor(
    readonly file: string | null,
    readonly problems: string[],
  ) {
    super(`invalid config${file ? ` ${file}` : ''}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}
