// The session settings a StartupMessage asks for, read as the server reads them: every parameter that is not
// the protocol's own is a setting, and `options` is a command line of `-c name=value` / `--name=value` switches
// (split and unescaped as the server's pg_split_opts does, names read as its ParseLongOption does).
// The engine vets each setting (the deps' startupSettingProblem) and forwards the allowed ones upstream.

/** Startup parameters that are not settings: the broker answers for them itself. */
const PROTOCOL_PARAMS = new Set(['user', 'database', 'options', 'replication']);

export interface StartupSetting {
  name: string;
  value: string;
  /** The `options` switch it came from (`-c search_path=app`); null for a parameter of its own. */
  from: string | null;
}

/** Why a startup packet's settings cannot be relayed: the client is told this, with the SQLSTATE. */
export class StartupSettingsError extends Error {
  override name = 'StartupSettingsError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Is this startup parameter the protocol's own (or a `_pq_.` protocol extension, negotiated apart)? */
export function isProtocolParam(name: string): boolean {
  return PROTOCOL_PARAMS.has(name) || name.startsWith('_pq_.');
}

/** C's isspace() in the server's locale-independent sense: what separates `options` words. */
const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';

/**
 * Split an `options` string into words as the server does (pg_split_opts): runs of whitespace separate words,
 * and a backslash makes the next character (a space, another backslash) part of the word.
 */
export function splitOptions(options: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < options.length) {
    while (i < options.length && isSpace(options[i]!)) i++;
    if (i >= options.length) break;
    let word = '';
    let escaped = false;
    for (; i < options.length; i++) {
      const c = options[i]!;
      if (isSpace(c) && !escaped) break;
      if (!escaped && c === '\\') escaped = true;
      else {
        escaped = false;
        word += c;
      }
    }
    words.push(word);
  }
  return words;
}

/** `name=value` as the server's ParseLongOption reads it: the first `=` splits, and `-` in the name means `_`. */
function longOption(arg: string, shown: string): { name: string; value: string } {
  const eq = arg.indexOf('=');
  if (eq < 0) throw new StartupSettingsError('42601', `options: ${shown} has no value (write -c name=value)`);
  const name = arg.slice(0, eq).replace(/-/g, '_');
  if (name === '') throw new StartupSettingsError('42601', `options: ${shown} names no setting (write -c name=value)`);
  return { name, value: arg.slice(eq + 1) };
}

/**
 * The settings of an `options` string. Only `-c name=value` (also `-cname=value`) and `--name=value` set
 * something; any other switch (`-d 5`, `-F`, `-e`, ...) or a bare word is refused, naming it, rather than
 * relayed or dropped. A name the protocol itself uses (`-c options=...`, `-c user=...`) is refused too:
 * forwarded as a parameter of its own, it would be read as the protocol's and not as a setting.
 */
export function parseOptions(options: string): StartupSetting[] {
  const words = splitOptions(options);
  const out: StartupSetting[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    let arg: string;
    let shown: string;
    if (word.startsWith('--') && word.length > 2) {
      arg = word.slice(2);
      shown = word;
    } else if (word === '-c') {
      if (i + 1 >= words.length) throw new StartupSettingsError('42601', 'options: -c at the end has no name=value after it');
      arg = words[++i]!;
      shown = `-c ${arg}`;
    } else if (word.startsWith('-c')) {
      arg = word.slice(2);
      shown = word;
    } else if (word.startsWith('-') && word.length > 1) {
      throw new StartupSettingsError(
        '0A000',
        `options: the server switch ${JSON.stringify(word)} is not relayed by jit-broker (only -c name=value and --name=value settings are)`,
      );
    } else {
      throw new StartupSettingsError('42601', `options: ${JSON.stringify(word)} is not a switch (write -c name=value)`);
    }
    const { name, value } = longOption(arg, shown);
    if (isProtocolParam(name.toLowerCase())) {
      throw new StartupSettingsError('0A000', `options: ${shown} is not a setting (${name} is a startup parameter of the protocol itself)`);
    }
    out.push({ name, value, from: shown });
  }
  return out;
}

/**
 * Every setting a StartupMessage asks for, in the order the server applies them (the `options` switches first,
 * then the other parameters, so a later one wins). Protocol parameters (`user`, `database`, `replication`,
 * `_pq_.*`) are not settings and are left to the caller. Throws StartupSettingsError for a malformed `options`.
 */
export function startupSettings(params: Record<string, string>): StartupSetting[] {
  const fromOptions = params.options ? parseOptions(params.options) : [];
  const own = Object.entries(params)
    .filter(([name]) => !isProtocolParam(name))
    .map(([name, value]): StartupSetting => ({ name, value, from: null }));
  return [...fromOptions, ...own];
}
