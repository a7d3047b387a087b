// TLS material for the client-facing listeners: the configured cert, or a self-signed one made once under data_dir.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';

export interface TlsMaterial {
  context: tls.SecureContext;
  certFile: string;
  keyFile: string;
  generated: boolean;
}

export async function loadTls(cfg: { cert: string | null; key: string | null }, dataDir: string): Promise<TlsMaterial> {
  let certFile = cfg.cert;
  let keyFile = cfg.key;
  let generated = false;
  if (!certFile || !keyFile) {
    certFile = join(dataDir, 'broker.crt');
    keyFile = join(dataDir, 'broker.key');
    if (!existsSync(certFile) || !existsSync(keyFile)) {
      const { generate } = await import('selfsigned'); // only for the first start: later ones read the files
      const pems = await generate([{ name: 'commonName', value: 'jit-broker' }], {
        keySize: 2048,
        algorithm: 'sha256',
        notAfterDate: new Date(Date.now() + 825 * 86400_000),
        extensions: [
          {
            name: 'subjectAltName',
            altNames: [
              { type: 2, value: 'localhost' },
              { type: 7, ip: '127.0.0.1' },
              { type: 7, ip: '::1' },
            ],
          },
        ],
      });
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(keyFile, pems.private, { mode: 0o600 });
      writeFileSync(certFile, pems.cert);
      generated = true;
    }
  }
  const read = (f: string, what: string) => {
    try {
      return readFileSync(f);
    } catch (e) {
      throw new Error(`cannot read the TLS ${what} ${f}: ${(e as Error).message}`);
    }
  };
  const context = tls.createSecureContext({ cert: read(certFile, 'certificate'), key: read(keyFile, 'key'), minVersion: 'TLSv1.2' });
  return { context, certFile, keyFile, generated };
}
