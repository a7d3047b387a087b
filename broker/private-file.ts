// The small secrets a broker makes for itself under data_dir (the admin token, the console's cookie key, the
// masking hash key): created once with mode 0600 whatever the umask, never overwritten, and read back refusing
// a file other users can read.
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** The file's content, trimmed, or null when it does not exist. A file others can read is refused; `fix` says what to do. */
export function readPrivateFile(file: string, fix: string): string | null {
  let mode: number;
  try {
    mode = statSync(file).mode & 0o777;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  if (mode & 0o077) throw new Error(`${file} can be read by other users (mode ${mode.toString(8).padStart(4, '0')}): ${fix}`);
  return readFileSync(file, 'utf8').trim();
}

/** Writes `content` to a new file (its folder made 0700 if missing); when another process made it first, theirs stays. */
export function createPrivateFile(file: string, content: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  try {
    writeFileSync(file, content, { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600); // whatever the umask
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // another process made it first: use theirs
  }
}
