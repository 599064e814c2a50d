/**
 * A throwaway certificate authority and a server certificate for 127.0.0.1/localhost, made with
 * the machine's `openssl` (once per test process, or anew for a renewal), so test servers — the
 * push providers', and Parley's own listeners — speak real TLS, and clients trust them through
 * their `ca` option only (nothing is added to the system).
 * @module
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The CA's certificate (what clients trust) and the server's key and certificate chain. */
export interface TestTls {
  ca: string;
  key: string;
  cert: string;
}

let made: TestTls | undefined;

/** The process's test CA and server certificate, made on first use. */
export function testTls(): TestTls {
  made ??= makeTestTls();
  return made;
}

/** A new CA and server certificate (a renewal, for tests that swap certificates). */
export function makeTestTls(): TestTls {
  const dir = mkdtempSync(join(tmpdir(), 'parley-push-tls-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  try {
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    ssl(
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      '/CN=Parley push test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    );
    ssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
    writeFileSync(
      join(dir, 'ext.cnf'),
      'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
    );
    ssl(
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.crt',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
    );
    return {
      ca: readFileSync(join(dir, 'ca.crt'), 'utf8'),
      key: readFileSync(join(dir, 'server.key'), 'utf8'),
      cert: readFileSync(join(dir, 'server.crt'), 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
