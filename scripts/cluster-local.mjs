#!/usr/bin/env node
// Runs a local Parley cluster on the engines of `npm run engines:up`: `parley migrate-cluster`,
// N `parley serve` processes (all roles) and HAProxy in front of them, until Ctrl-C.
//   npm run cluster:local -- [--processes 3] [--port 9200] [--keyspace parley_local] [--prefix parley-local.]
//                            [--node-args="--cpu-prof --cpu-prof-dir=/tmp/prof"]
//                            [--roles "gateway;sequencer;fanout"]  (one process per entry; HAProxy
//                            sends clients to the processes with the gateway role: per-role CPU)
//                            [--tls]  (HAProxy also terminates TLS 1.3 on port+200, with a
//                            self-signed certificate made by openssl: TLS at the edge, plain
//                            HTTP behind it; docs/operations.md, "TLS")
// Prints the WebSocket URL and the HS256 secret clients (and `npm run bench -- … --url --secret`) use.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
// The same HAProxy configuration the cluster tests run (tsx loads the TypeScript module).
import { haproxyConfig } from '../packages/server/test/haproxy.ts';

const { values } = parseArgs({
  options: {
    processes: { type: 'string', default: '3' },
    port: { type: 'string', default: '9200' },
    keyspace: { type: 'string', default: 'parley_local' },
    prefix: { type: 'string', default: 'parley-local.' },
    partitions: { type: 'string', default: '12' },
    'node-args': { type: 'string', default: '' },
    roles: { type: 'string' },
    tls: { type: 'boolean', default: false },
  },
});
const root = new URL('..', import.meta.url).pathname;
const env = Object.fromEntries(
  readFileSync(join(root, 'engines/.run/env'), 'utf8')
    .split('\n')
    .filter((l) => /^[A-Z0-9_]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);
const cli = join(root, 'packages/server/dist/cli.js');
// Each process's roles (comma-separated within one entry); absent: every process runs all roles.
const roles = values.roles?.split(';').map((r) => r.trim());
const n = roles?.length ?? Number(values.processes);
const base = Number(values.port);
const secret = randomBytes(33).toString('base64');
execFileSync(
  process.execPath,
  [
    cli,
    'migrate-cluster',
    '--cassandra',
    env.PARLEY_TEST_CASSANDRA,
    '--cassandra-dc',
    env.PARLEY_TEST_CASSANDRA_DC,
    '--keyspace',
    values.keyspace,
    '--replication-factor',
    '1',
    '--kafka',
    env.PARLEY_TEST_KAFKA,
    '--partitions',
    values.partitions,
    '--topic-prefix',
    values.prefix,
  ],
  { stdio: 'inherit' },
);
const children = [];
for (let i = 1; i <= n; i++) {
  children.push(
    spawn(process.execPath, [...values['node-args'].split(' ').filter(Boolean), cli, 'serve'], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: {
        ...process.env,
        PARLEY_PORT: String(base + i),
        // Each process's admin listener (/metrics) on a port of its own: base + 100 + i.
        PARLEY_ADMIN_PORT: String(base + 100 + i),
        PARLEY_JWT_SECRET: secret,
        PARLEY_LOG_LEVEL: 'warn',
        PARLEY_CASSANDRA: env.PARLEY_TEST_CASSANDRA,
        PARLEY_CASSANDRA_DC: env.PARLEY_TEST_CASSANDRA_DC,
        PARLEY_KEYSPACE: values.keyspace,
        PARLEY_KAFKA: env.PARLEY_TEST_KAFKA,
        PARLEY_TOPIC_PREFIX: values.prefix,
        PARLEY_REDIS_URL: env.PARLEY_TEST_REDIS,
        ...(roles ? { PARLEY_ROLES: roles[i - 1] } : {}),
        // Media in the engine scripts' S3 server (clients PUT and GET it directly).
        ...(env.PARLEY_TEST_S3
          ? {
              PARLEY_S3_ENDPOINT: env.PARLEY_TEST_S3,
              PARLEY_S3_REGION: env.PARLEY_TEST_S3_REGION,
              PARLEY_S3_BUCKET: env.PARLEY_TEST_S3_BUCKET,
              PARLEY_S3_ACCESS_KEY_ID: env.PARLEY_TEST_S3_ACCESS_KEY,
              PARLEY_S3_SECRET_ACCESS_KEY: env.PARLEY_TEST_S3_SECRET_KEY,
            }
          : {}),
      },
    }),
  );
}
const dir = mkdtempSync(join(tmpdir(), 'parley-cluster-'));
const cfg = join(dir, 'haproxy.cfg');
const tls = values.tls ? { port: base + 200, pemFile: selfSignedPem(dir) } : undefined;
writeFileSync(
  cfg,
  haproxyConfig(
    base,
    Array.from({ length: n }, (_, i) => i)
      .filter((i) => !roles || roles[i].includes('gateway'))
      .map((i) => base + i + 1),
    tls,
  ),
);
children.push(
  spawn(env.PARLEY_TEST_HAPROXY ?? 'haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'inherit'] }),
);
console.log(
  `cluster: ${n} processes on ports ${base + 1}..${base + n} (metrics on ${base + 101}..${base + 100 + n}), HAProxy at ws://127.0.0.1:${base}/v1/ws`,
);
if (tls)
  console.log(
    `TLS (terminated by HAProxy): wss://localhost:${tls.port}/v1/ws, self-signed certificate in ${tls.pemFile}`,
  );
console.log(`secret: ${secret}`);
console.log(
  `pids: ${children
    .slice(0, n)
    .map((c) => c.pid)
    .join(',')}`,
);
/** A self-signed certificate for localhost and its key, in one PEM file as HAProxy reads it. */
function selfSignedPem(into) {
  const cert = join(into, 'parley.crt');
  const key = join(into, 'parley.key');
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
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '30',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  const pem = join(into, 'parley.pem');
  writeFileSync(pem, `${readFileSync(cert, 'utf8')}\n${readFileSync(key, 'utf8')}`);
  return pem;
}

const stop = () => {
  for (const c of children) c.kill('SIGTERM');
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
