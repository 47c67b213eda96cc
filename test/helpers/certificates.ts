/**
 * [P-69] Test certificates, made at test time (none is committed): a self-signed P-256 certificate and its key, PEM
 * files in a folder of the test's, by the `openssl` command (a few milliseconds).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

export interface TestCertificate {
  /** the certificate's PEM file (give it to the server, and to a client that should trust it) */
  certFile: string;
  /** its private key's PEM file */
  keyFile: string;
  /** the certificate's PEM text */
  pem: string;
}

/**
 * A self-signed certificate valid for a day. `subjectAltName` is what a client checks the host it connected to
 * against; the default names the loopback address and `localhost`.
 */
export function makeCertificate(
  folder: string,
  { name = 'server', subjectAltName = 'IP:127.0.0.1,DNS:localhost', commonName = 'localhost' } = {},
): TestCertificate {
  const certFile = path.join(folder, `${name}-cert.pem`);
  const keyFile = path.join(folder, `${name}-key.pem`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${commonName}`,
      '-addext',
      `subjectAltName=${subjectAltName}`,
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return { certFile, keyFile, pem: readFileSync(certFile, 'utf8') };
}
