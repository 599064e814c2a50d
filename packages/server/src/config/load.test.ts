import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError, fromEnv, loadConfig } from './load.js';
import { type Config, configSchema, ENV_KEYS } from './schema.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-config-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
/** Writes a config file holding `text` and returns its path. */
function configFile(text: string): string {
  const path = join(dir, `config-${++files}.json`);
  writeFileSync(path, text);
  return path;
}

/** Asserts that `fn` throws a ConfigError whose message contains every one of `parts`. */
function throwsConfigError(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    for (const p of parts) assert.ok(err.message.includes(p), `"${err.message}" does not mention ${p}`);
    return true;
  });
}

const SECRET = 'a-test-secret-that-is-long-enough-0123456789';

describe('loadConfig', () => {
  test('defaults: every documented default, no keys configured', () => {
    const config = loadConfig();
    const defaults: Partial<Config> = {
      host: '127.0.0.1',
      port: 8080,
      dataDir: './data',
      origins: [],
      logLevel: 'info',
      heartbeatMs: 30_000,
      drainMs: 30_000,
      connectTimeoutMs: 10_000,
      maxFrameBytes: 128 * 1024,
      maxBodyBytes: 64 * 1024,
      maxConnectionsPerUser: 8,
      maxOutboundBytes: 16 * 1024 * 1024,
      maxReplyBytes: 1024 * 1024,
      maxPipelinedRequests: 64,
      fanoutBurst: 20_000,
      readBurst: 10_000,
      maxBadFramesPerMinute: 20,
      inboxRetentionMs: 30 * 24 * 3600 * 1000,
      metrics: true,
    };
    for (const [key, value] of Object.entries(defaults))
      assert.deepEqual(config[key as keyof Config], value, key);
    for (const key of ['jwtSecret', 'jwtPublicKeys', 'jwksUrl', 'jwtIssuer', 'jwtAudience'] as const) {
      assert.equal(key in config, false, `${key} has no default`);
    }
    assert.deepEqual(loadConfig({ env: {} }), config);
  });

  test('a JSON file sets values; the rest keep their defaults', () => {
    const file = configFile(
      JSON.stringify({ port: 9000, host: '0.0.0.0', origins: ['https://chat.example'], metrics: false }),
    );
    const config = loadConfig({ file });
    assert.equal(config.port, 9000);
    assert.equal(config.host, '0.0.0.0');
    assert.deepEqual(config.origins, ['https://chat.example']);
    assert.equal(config.metrics, false);
    assert.equal(config.heartbeatMs, 30_000);
  });

  test('environment variables override the file, and overrides override both', () => {
    const file = configFile(JSON.stringify({ port: 9000, host: '0.0.0.0', logLevel: 'warn' }));
    const config = loadConfig({ file, env: { PARLEY_PORT: '9100', PARLEY_LOG_LEVEL: 'debug' } });
    assert.equal(config.port, 9100);
    assert.equal(config.logLevel, 'debug');
    assert.equal(config.host, '0.0.0.0', 'a key the environment does not set keeps the file value');
    const over = loadConfig({ file, env: { PARLEY_PORT: '9100' }, overrides: { port: 9200 } });
    assert.equal(over.port, 9200);
  });

  test('every ENV_KEYS entry is named after its key and parses into the config', () => {
    // Keys whose schema needs a particular shape of value; every other key gets a generic one.
    const special: Partial<Record<keyof Config, string>> = {
      jwtSecret: SECRET,
      jwksUrl: 'https://keys.example/.well-known/jwks.json',
      logLevel: 'debug',
      port: '4321',
      workers: '1', // more than 1 is refused together with cassandra (tested below)
      receiptCoalesceMs: '100',
      commitDelayMs: '2',
      maxReplyBytes: '524288',
      keyspace: 'parley_test',
      roles: ' sequencer, fanout,, ',
      webPushSubject: 'mailto:ops@example.org',
      apnsEnvironment: 'sandbox',
      apnsEndpoint: 'https://apns.example:8443',
      apnsSandboxEndpoint: 'https://apns-sandbox.example:8443',
      fcmEndpoint: 'https://fcm.example',
      pushRetries: '3',
      publicUrl: 'https://chat.example.com',
      s3Endpoint: 'http://127.0.0.1:19000',
      tlsMinVersion: 'TLSv1.2',
      beforeSendUrl: 'https://moderation.example/check',
      beforeSendPolicy: 'closed',
      webhookEvents: 'message.stored, user.online,',
      serviceAccounts: 'helpbot, billing-bot',
      webhookRetries: '3',
    };
    const env: Record<string, string> = {};
    const want: Record<string, unknown> = {};
    let i = 0;
    for (const [key, spec] of Object.entries(ENV_KEYS)) {
      const upperSnake = key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
      assert.equal(spec.env, `PARLEY_${upperSnake}`, `${key}'s variable`);
      i++;
      const raw = special[key as keyof Config];
      switch (spec.parse) {
        case 'string':
          env[spec.env] = raw ?? `value-of-${key}`;
          want[key] = env[spec.env];
          break;
        case 'int':
          env[spec.env] = raw ?? String(1_000 + i);
          want[key] = Number(env[spec.env]);
          break;
        case 'bool':
          env[spec.env] = 'false';
          want[key] = false;
          break;
        case 'list':
          env[spec.env] = raw ?? ' https://a.example, https://b.example,, ';
          want[key] = env[spec.env]!.split(',')
            .map((v) => v.trim())
            .filter((v) => v.length > 0);
          break;
      }
    }
    assert.deepEqual(
      Object.keys(ENV_KEYS).sort(),
      Object.keys(configSchema.shape).sort(),
      'every key has a variable',
    );
    const config = loadConfig({ env });
    for (const [key, value] of Object.entries(want))
      assert.deepEqual(config[key as keyof Config], value, key);
  });

  test('booleans accept true, false, 1 and 0, and nothing else', () => {
    assert.equal(loadConfig({ env: { PARLEY_METRICS: 'true' } }).metrics, true);
    assert.equal(loadConfig({ env: { PARLEY_METRICS: '1' } }).metrics, true);
    assert.equal(loadConfig({ env: { PARLEY_METRICS: 'false' } }).metrics, false);
    assert.equal(loadConfig({ env: { PARLEY_METRICS: '0' } }).metrics, false);
    throwsConfigError(() => loadConfig({ env: { PARLEY_METRICS: 'yes' } }), 'PARLEY_METRICS', 'yes');
  });

  test('lists split on commas, trimmed, without empty items', () => {
    assert.deepEqual(fromEnv({ PARLEY_ORIGINS: 'a, b ,c' }), { origins: ['a', 'b', 'c'] });
    assert.deepEqual(fromEnv({ PARLEY_ORIGINS: '' }), { origins: [] });
  });

  test('an unknown key in the file is a ConfigError naming the key', () => {
    const file = configFile(JSON.stringify({ port: 9000, prot: 9001 }));
    throwsConfigError(() => loadConfig({ file }), 'prot');
  });

  test('an unknown PARLEY_* variable is a ConfigError naming it', () => {
    throwsConfigError(() => loadConfig({ env: { PARLEY_PROT: '80' } }), 'PARLEY_PROT');
  });

  test('PARLEY_TEST_* variables and variables without the prefix are ignored', () => {
    const config = loadConfig({
      env: { PARLEY_TEST_CASSANDRA: '127.0.0.1:9042', PARLEY_TEST_ANYTHING: 'x', PORT: 'abc', HOME: '/root' },
    });
    assert.equal(config.port, 8080);
    assert.deepEqual(fromEnv({ PARLEY_TEST_KAFKA: 'localhost:9092', PATH: '/bin' }), {});
  });

  test('a bad integer is a ConfigError naming the variable', () => {
    for (const bad of ['80x', '1.5', '', ' ', '1e3', '9007199254740993']) {
      throwsConfigError(() => loadConfig({ env: { PARLEY_PORT: bad } }), 'PARLEY_PORT', 'not an integer');
    }
    throwsConfigError(() => loadConfig({ env: { PARLEY_HEARTBEAT_MS: 'soon' } }), 'PARLEY_HEARTBEAT_MS');
  });

  test('every bad variable is reported, not just the first', () => {
    throwsConfigError(
      () => loadConfig({ env: { PARLEY_PORT: 'x', PARLEY_METRICS: 'maybe', PARLEY_NOPE: '1' } }),
      'PARLEY_PORT',
      'PARLEY_METRICS',
      'PARLEY_NOPE',
    );
  });

  test('values outside their schema are ConfigErrors naming the key', () => {
    throwsConfigError(() => loadConfig({ env: { PARLEY_PORT: '65536' } }), 'port');
    throwsConfigError(() => loadConfig({ env: { PARLEY_HEARTBEAT_MS: '0' } }), 'heartbeatMs');
    throwsConfigError(() => loadConfig({ env: { PARLEY_LOG_LEVEL: 'loud' } }), 'logLevel');
    throwsConfigError(() => loadConfig({ env: { PARLEY_JWKS_URL: 'not a url' } }), 'jwksUrl');
    throwsConfigError(() => loadConfig({ file: configFile('{"port": "8080"}') }), 'port');
  });

  test('workers > 1 with cluster mode is refused with the reason, not run on the embedded store', () => {
    throwsConfigError(
      () => loadConfig({ env: { PARLEY_CASSANDRA: '127.0.0.1:9042', PARLEY_WORKERS: '4' } }),
      'workers',
      'one process per core',
    );
    assert.equal(loadConfig({ env: { PARLEY_CASSANDRA: '127.0.0.1:9042' } }).workers, 1);
  });

  test('a jwtSecret shorter than 32 characters is an error', () => {
    throwsConfigError(() => loadConfig({ env: { PARLEY_JWT_SECRET: 'x'.repeat(31) } }), 'jwtSecret', '32');
    throwsConfigError(
      () => loadConfig({ file: configFile(JSON.stringify({ jwtSecret: 'short' })) }),
      'jwtSecret',
    );
    assert.equal(loadConfig({ env: { PARLEY_JWT_SECRET: 'x'.repeat(32) } }).jwtSecret, 'x'.repeat(32));
  });

  test('an unreadable, invalid or non-object file is a ConfigError naming the file', () => {
    const missing = join(dir, 'missing.json');
    throwsConfigError(() => loadConfig({ file: missing }), missing);
    const broken = configFile('{ "port": 80,');
    throwsConfigError(() => loadConfig({ file: broken }), broken, 'not valid JSON');
    const list = configFile('[1, 2]');
    throwsConfigError(() => loadConfig({ file: list }), list, 'JSON object');
  });
});
