/**
 * HAProxy in front of Parley processes, as the cluster tests (and a deployment) run it: WebSocket
 * upgrades pass through (`timeout tunnel`), each backend is health-checked on `/readyz`, and
 * connections go round-robin to the healthy ones.
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunningHaproxy {
  port: number;
  url: string;
  /** The TLS frontend's WebSocket URL, when it has one. */
  tlsUrl: string | null;
  stop(): Promise<void>;
}

/**
 * A TLS frontend: HAProxy terminates TLS 1.3 (HTTP/2 or HTTP/1.1 by ALPN) on `port` with the
 * certificate chain and key in `pemFile`, adds HSTS, and passes plain HTTP and WebSocket to Parley.
 */
export interface HaproxyTls {
  port: number;
  pemFile: string;
}

/** A free TCP port on loopback. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** The configuration for `backends` (loopback ports), listening on `port` (and with TLS on `tls.port`). */
export function haproxyConfig(port: number, backends: readonly number[], tls?: HaproxyTls): string {
  return [
    'global',
    '  maxconn 4000',
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  timeout tunnel 1h',
    '  timeout http-request 10s',
    `frontend parley`,
    `  bind 127.0.0.1:${port}`,
    '  default_backend parley',
    ...(tls
      ? [
          'frontend parley_tls',
          `  bind 127.0.0.1:${tls.port} ssl crt ${tls.pemFile} alpn h2,http/1.1 ssl-min-ver TLSv1.3`,
          '  http-response set-header Strict-Transport-Security "max-age=31536000"',
          '  default_backend parley',
        ]
      : []),
    'backend parley',
    '  balance roundrobin',
    '  option httpchk GET /readyz',
    '  http-check expect status 200',
    '  default-server inter 300ms fall 2 rise 2',
    ...backends.map((p, i) => `  server p${i} 127.0.0.1:${p} check`),
    '',
  ].join('\n');
}

/** Starts HAProxy (the binary from `PARLEY_TEST_HAPROXY` or `haproxy`) in front of `backends`. */
export async function startHaproxy(
  backends: readonly number[],
  tlsPem?: { cert: string; key: string },
): Promise<RunningHaproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-haproxy-'));
  const port = await freePort();
  const cfg = join(dir, 'haproxy.cfg');
  let tls: HaproxyTls | undefined;
  if (tlsPem) {
    tls = { port: await freePort(), pemFile: join(dir, 'parley.pem') };
    writeFileSync(tls.pemFile, `${tlsPem.cert}\n${tlsPem.key}`);
  }
  writeFileSync(cfg, haproxyConfig(port, backends, tls));
  const proc: ChildProcess = spawn(process.env.PARLEY_TEST_HAPROXY ?? 'haproxy', ['-db', '-f', cfg], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  // Wait until it accepts connections and a backend is up (health checks every 300 ms).
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`haproxy exited: ${err}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (r.status === 200) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`haproxy did not become ready: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    url: `ws://127.0.0.1:${port}/v1/ws`,
    tlsUrl: tls ? `wss://127.0.0.1:${tls.port}/v1/ws` : null,
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
