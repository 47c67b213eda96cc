/**
 * [P-69] The client's side of TLS: opens the connection (TLS or plain TCP), and turns a failed TLS handshake into a
 * TlsError that says what went wrong in words a person can act on (not trusted, not this host's certificate, expired,
 * the server does not speak TLS), never an OpenSSL code alone.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { TlsError } from '../src/protocol/index.ts';

export interface ClientTlsOptions {
  /**
   * PEM certificates to trust (a CA, or the server's own self-signed certificate); they replace the system's store.
   * Absent: the system's store of CAs.
   */
  ca?: string | Buffer;
  /** the name the certificate must carry; default: the host connected to */
  servername?: string;
}

/** A connecting socket and the event it emits once the protocol may start (TCP connected, or TLS verified). */
export function openTransport(
  host: string,
  port: number,
  options: ClientTlsOptions | undefined,
): { socket: net.Socket; ready: 'connect' | 'secureConnect' } {
  if (!options) return { socket: net.connect({ host, port, noDelay: true }), ready: 'connect' };
  const socket = tls.connect({
    host,
    port,
    // SNI carries host names only, never an address; the certificate is still checked against the address.
    ...(options.servername !== undefined ? { servername: options.servername } : {}),
    ...(options.ca !== undefined ? { ca: options.ca } : {}),
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  });
  socket.setNoDelay(true);
  return { socket, ready: 'secureConnect' };
}

const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REJECTED',
  'INVALID_CA',
]);
const DATES = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);
/** What OpenSSL says when the first bytes it reads are not a TLS record: a plain-text answer. */
const NOT_TLS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_HTTP_REQUEST']);

type TlsSocketError = Error & { code?: string; reason?: string; cert?: { subjectaltname?: string } };

/** [P-69] The TlsError a failed connection attempt means, or null when the failure has nothing to do with TLS. */
export function tlsFailureOf(error: Error, host: string, port: number): TlsError | null {
  const { code, reason, cert } = error as TlsSocketError;
  if (code === undefined) return null;
  const server = `${host}:${port}`;
  if (UNTRUSTED.has(code)) {
    return new TlsError(
      'tls-untrusted-certificate',
      `the server's certificate is not trusted (${error.message}); pass --tls-ca with the certificate that signed it`,
      { cause: error },
    );
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    const names = cert?.subjectaltname ? `it is for ${cert.subjectaltname}` : 'it names no host';
    return new TlsError(
      'tls-host-mismatch',
      `the server's certificate is not for ${host} (${names}); connect by a name it lists, or give the server a ` +
        `certificate for ${host}`,
      { cause: error },
    );
  }
  if (DATES.has(code)) {
    return new TlsError('tls-certificate-dates', `the server's certificate is not valid now (${error.message})`, {
      cause: error,
    });
  }
  if (NOT_TLS.has(code)) {
    return new TlsError(
      'tls-not-spoken',
      `${server} does not speak TLS (it answered in plain text, not with a TLS record): connect without --tls`,
      { cause: error },
    );
  }
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) {
    return new TlsError('tls-handshake-failed', `the TLS handshake with ${server} failed: ${reason ?? error.message}`, {
      cause: error,
    });
  }
  return null;
}

/**
 * [P-69] Whether the first bytes a plain-text client received are a TLS record (an alert or a handshake, then the
 * major version 3) rather than a frame: the server speaks TLS on this port.
 */
export function looksLikeTlsRecord(chunk: Buffer): boolean {
  return chunk.length >= 2 && chunk[0] !== undefined && chunk[0] >= 0x14 && chunk[0] <= 0x17 && chunk[1] === 0x03;
}

/** [P-69] Told to a plain-text client whose server answered in TLS. */
export function tlsRequiredError(host: string, port: number): TlsError {
  return new TlsError('tls-required', `${host}:${port} speaks TLS: connect with --tls (and --tls-ca if needed)`);
}

/**
 * [P-69] The TLS options of the CLI and the dashboard: `--tls` (or IMGCACHE_TLS=1) asks for TLS with the system's
 * CAs; `--tls-ca FILE` (or IMGCACHE_TLS_CA) trusts the certificates in FILE instead, and implies `--tls`. Undefined:
 * plain TCP. Throws an Error saying which file cannot be read.
 */
export function clientTlsOptions(
  tlsFlag: boolean | undefined,
  caFile: string | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): ClientTlsOptions | undefined {
  const file = caFile ?? (env.IMGCACHE_TLS_CA || undefined);
  const asked = tlsFlag === true || file !== undefined || ['1', 'on', 'true', 'yes'].includes(env.IMGCACHE_TLS ?? '');
  if (!asked) return undefined;
  if (file === undefined) return {};
  let ca: Buffer;
  try {
    ca = readFileSync(file);
  } catch (error) {
    throw new Error(`cannot read the CA file ${file} (--tls-ca): ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
  // A file with no certificate in it would trust nothing, and every server would be refused for a reason not its own.
  if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
    throw new Error(`the CA file ${file} (--tls-ca) holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  try {
    new X509Certificate(ca); // the first certificate of the file, parsed: a damaged one is said here
  } catch (error) {
    const reason = (error as { reason?: string }).reason ?? (error as Error).message;
    throw new Error(`the CA file ${file} (--tls-ca) holds a certificate that cannot be read: ${reason}`);
  }
  return { ca };
}
