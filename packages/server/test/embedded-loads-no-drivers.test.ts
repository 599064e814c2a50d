// An embedded server, run as shipped (the built CLI, no source condition), never loads
// @parley/cluster nor the drivers it owns: every module the process resolves is recorded by a
// resolve hook (resolutions/record.mjs) while the server starts, serves a message and stops.
// The dependency-cruiser rule `server-loads-no-cluster-drivers` checks the imports; this checks
// the process, the dynamic import included. Nor does a server without the server API load
// Connect and protobuf (`server-api/load.ts` imports them only with a keys file).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { mintToken } from '../src/gateway/auth.js';
import { spawnServer } from './child-server.js';
import { TEST_SECRET, TestClient, tempDir } from './helpers.js';

const BUILT_CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const RECORDER = fileURLToPath(new URL('./resolutions/record.mjs', import.meta.url));
/** A resolution (specifier or URL) that only cluster mode may make. */
const CLUSTER_ONLY = /cassandra-driver|kafkajs|ioredis|@aws-sdk\/|@parley\/cluster|\/packages\/cluster\//;
/** A resolution only the server API (on with a keys file) makes. */
const SERVER_API_ONLY = /@connectrpc\/|@bufbuild\/|@parley\/server-client|\/packages\/server-client\//;

test('an embedded server resolves neither @parley/cluster nor cassandra-driver, kafkajs, ioredis, @aws-sdk; without the server API, not Connect either', async () => {
  assert.ok(existsSync(BUILT_CLI), `${BUILT_CLI} is missing: npm run build`);
  const data = tempDir();
  const record = tempDir('parley-resolutions-');
  const resolutions = join(record.dir, 'resolutions.tsv');
  try {
    const srv = await spawnServer(
      {
        PARLEY_DATA_DIR: data.dir,
        PARLEY_JWT_SECRET: TEST_SECRET,
        PARLEY_DRAIN_MS: '0',
        PARLEY_TEST_RESOLUTIONS: resolutions,
      },
      15_000,
      ['--import', RECORDER, BUILT_CLI],
    );
    try {
      assert.ok(srv.adminUrl, srv.output());
      assert.equal((await fetch(`${srv.adminUrl}/readyz`)).status, 200);
      const secret = new TextEncoder().encode(TEST_SECRET);
      const [alice, bob] = await Promise.all([TestClient.open(srv.url), TestClient.open(srv.url)]);
      for (const [c, user] of [
        [alice, 'alice'],
        [bob, 'bob'],
      ] as const) {
        const token = await mintToken(secret, { user, ttlSeconds: 60 });
        assert.equal((await c.request({ type: 'connect', token, device: 'd1' })).ok, true);
      }
      const sent = await alice.request({
        type: 'send',
        conv: 'dm:alice:bob',
        cmid: 'c1',
        kind: 'text',
        body: 'hi',
      });
      assert.equal(sent.ok, true, JSON.stringify(sent));
      assert.equal((await bob.nextEvent((f) => f.type === 'message')).body, 'hi');
      alice.close();
      bob.close();
    } finally {
      srv.kill('SIGTERM');
      await srv.exited;
    }
    const lines = readFileSync(resolutions, 'utf8').trim().split('\n');
    // The recorder saw the process load its store and its socket library: an empty record proves nothing.
    assert.ok(
      lines.some((l) => l.startsWith('better-sqlite3\t')) && lines.some((l) => l.startsWith('ws\t')),
      `the recorder did not see better-sqlite3 and ws:\n${lines.join('\n')}`,
    );
    assert.deepEqual(
      lines.filter((l) => CLUSTER_ONLY.test(l)),
      [],
      'an embedded server loaded cluster-only modules',
    );
    assert.deepEqual(
      lines.filter((l) => SERVER_API_ONLY.test(l)),
      [],
      'a server without the server API loaded its modules',
    );
  } finally {
    data.remove();
    record.remove();
  }
});
