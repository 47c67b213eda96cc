/**
 * [P-69] The dashboard over TLS, as a person runs it in a real terminal (tmux): `imgcache --tls-ca F` against a TLS
 * server shows the session; without the CA the certificate is refused with a sentence and exit status 5.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeCertificate } from './helpers/certificates.ts';
import { CLIENT_BIN } from './helpers/processes.ts';
import { makeTemporaryFolder, startTestServer, type TestServer } from './helpers/test-server.ts';
import { TmuxServer } from './helpers/tmux.ts';

const folder = makeTemporaryFolder('imgcache-tls-dashboard-');
const terminal = new TmuxServer(folder);
const certificate = makeCertificate(folder);
let server: TestServer;

test.before(async () => {
  server = await startTestServer({ tlsCert: certificate.certFile, tlsKey: certificate.keyFile, codes: [950] });
});

test.after(async () => {
  await terminal.kill();
  await server.stop();
  rmSync(folder, { recursive: true, force: true });
});

function dashboard(name: string, options: string[], env: Record<string, string> = {}) {
  const argv = [process.execPath, CLIENT_BIN, '--port', String(server.port), '--cache-dir', path.join(folder, name)];
  return terminal.start(name, [...argv, ...options], { width: 100, height: 30, cwd: folder, env });
}

test('[P-69] the dashboard with --tls-ca: connected over TLS, the images listed', async () => {
  const pane = await dashboard('trusted', ['--tls-ca', certificate.certFile]);
  const screen = await pane.waitFor((text) => text.includes('● connected') && text.includes('terrain-large.png'));
  assert.match(screen, /code 950 {2}platinum/);
  await pane.press('q');
  assert.is(await pane.waitForExit(), 0);
});

test('[P-69] the dashboard refuses a certificate it does not trust: a sentence, exit status 5', async () => {
  const pane = await dashboard('untrusted', [], { IMGCACHE_TLS: '1' });
  assert.is(await pane.waitForExit(), 5);
  // the terminal wraps the line at its width, anywhere in a word, and may scroll it off the screen: read it joined
  const screen = (await pane.captureWithHistory()).replace(/\n/g, '');
  assert.match(screen, /cannot reach the server at 127\.0\.0\.1:\d+: the server's certificate/);
  assert.match(screen, /certificate is not trusted \(self-signed certificate\); pass --tls-ca/);
});

test.run();
