// The floor: a Node relay with no broker code. SSLRequest → 'S' → TLS, then bytes piped to the upstream.
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
const [port, upHost, upPort, certFile, keyFile] = process.argv.slice(2);
const secureContext = tls.createSecureContext({ cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) });
function relay(client, first) {
  const up = net.connect({ host: upHost, port: Number(upPort), noDelay: true });
  if (first) up.write(first);
  client.pipe(up);
  up.pipe(client);
  const end = () => {
    client.destroy();
    up.destroy();
  };
  client.on('error', end);
  up.on('error', end);
  client.on('close', end);
  up.on('close', end);
}
net
  .createServer({ noDelay: true }, (c) => {
    const onFirst = (buf) => {
      const code = buf.length >= 8 ? buf.readUInt32BE(4) : 0;
      if (buf.length === 8 && code === 80877104) {
        c.write('N');
        c.once('data', onFirst);
        return;
      }
      if (buf.length === 8 && code === 80877103) {
        c.pause();
        c.write('S');
        const t = new tls.TLSSocket(c, { isServer: true, secureContext });
        relay(t, null);
        return;
      }
      relay(c, buf);
    };
    c.once('data', onFirst);
  })
  .listen(Number(port), '127.0.0.1');
