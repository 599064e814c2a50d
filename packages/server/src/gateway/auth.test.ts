import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { type JWK, SignJWT } from 'jose';
import { loadConfig } from '../config/load.js';
import type { ConfigInput } from '../config/schema.js';
import { ParleyError } from '../domain/errors.js';
import { mintToken, parsePublicKeys, parseTtl, resolveKeys, TokenVerifier } from './auth.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-auth-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let dirs = 0;
/** A data directory that does not exist yet. */
const newDataDir = () => join(dir, `data-${++dirs}`);

const SECRET = 'hs256-test-secret-hs256-test-secret-0123';
const secretBytes = new TextEncoder().encode(SECRET);

/** A verifier built the way the server builds it: config → resolveKeys → TokenVerifier. */
function verifierFor(input: ConfigInput): TokenVerifier {
  const config = loadConfig({ overrides: { dataDir: newDataDir(), ...input } });
  return new TokenVerifier(resolveKeys(config), config);
}

/** Asserts that verifying `token` fails with `unauthorized` and exactly `reason`. */
async function rejects(v: TokenVerifier, token: string, reason = 'invalid token'): Promise<void> {
  await assert.rejects(v.verify(token), (err: unknown) => {
    assert.ok(err instanceof ParleyError, `expected a ParleyError, got ${String(err)}`);
    assert.equal(err.code, 'unauthorized');
    assert.equal(err.message, reason);
    return true;
  });
}

const now = () => Math.floor(Date.now() / 1000);

/** Signs a token with `key`; `claims.exp` null leaves the expiry out. */
async function sign(
  key: KeyObject | Uint8Array,
  alg: string,
  claims: {
    sub?: string;
    exp?: number | null;
    device?: unknown;
    iss?: string;
    aud?: string;
    kid?: string;
  } = {},
): Promise<string> {
  const payload: Record<string, unknown> = {};
  if (claims.device !== undefined) payload.device = claims.device;
  const jwt = new SignJWT(payload).setProtectedHeader(
    claims.kid === undefined ? { alg, typ: 'JWT' } : { alg, typ: 'JWT', kid: claims.kid },
  );
  if (claims.sub !== '') jwt.setSubject(claims.sub ?? 'alice');
  if (claims.exp !== null) jwt.setExpirationTime(claims.exp ?? now() + 3600);
  if (claims.iss !== undefined) jwt.setIssuer(claims.iss);
  if (claims.aud !== undefined) jwt.setAudience(claims.aud);
  return jwt.sign(key);
}

const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');

interface Pair {
  alg: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  pem: string;
}

function pair(kind: 'ed25519' | 'es256' | 'rs256'): Pair {
  const keys =
    kind === 'ed25519'
      ? generateKeyPairSync('ed25519')
      : kind === 'es256'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const alg = kind === 'ed25519' ? 'EdDSA' : kind === 'es256' ? 'ES256' : 'RS256';
  return { alg, ...keys, pem: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

const ed = pair('ed25519');
const ed2 = pair('ed25519');
const es = pair('es256');
const rs = pair('rs256');

describe('TokenVerifier with an HS256 secret', () => {
  const v = verifierFor({ jwtSecret: SECRET });

  test('accepts a valid token and reports user and expiry', async () => {
    const exp = now() + 600;
    const claims = await v.verify(await sign(secretBytes, 'HS256', { sub: 'alice', exp }));
    assert.deepEqual(claims, { user: 'alice', expiresAt: exp * 1000, issuedAt: 0 });
  });

  test('accepts tokens minted by mintToken, with the device claim parsed', async () => {
    const claims = await v.verify(
      await mintToken(secretBytes, { user: 'bob', device: 'phone-1', ttlSeconds: 60 }),
    );
    assert.equal(claims.user, 'bob');
    assert.equal(claims.device, 'phone-1');
    assert.ok(Math.abs(claims.expiresAt - (Date.now() + 60_000)) < 5_000);
    const noDevice = await v.verify(await mintToken(secretBytes, { user: 'bob', ttlSeconds: 60 }));
    assert.equal('device' in noDevice, false);
  });

  test('rejects an expired token with "token expired"', async () => {
    await rejects(v, await sign(secretBytes, 'HS256', { exp: now() - 60 }), 'token expired');
  });

  test('rejects a token signed with another secret', async () => {
    const other = new TextEncoder().encode('another-secret-another-secret-0123456789');
    await rejects(v, await sign(other, 'HS256'));
  });

  test('rejects a token without exp', async () => {
    await rejects(v, await sign(secretBytes, 'HS256', { exp: null }));
  });

  test('rejects a token without sub', async () => {
    await rejects(v, await sign(secretBytes, 'HS256', { sub: '' }));
  });

  test('rejects a sub that is not a valid user id', async () => {
    for (const sub of ['a b', 'a:b', 'x'.repeat(65), 'é']) {
      await rejects(v, await sign(secretBytes, 'HS256', { sub }), 'token "sub" is not a valid user id');
    }
  });

  test('rejects a device claim that is not a valid device id', async () => {
    for (const device of ['a b', 42, '']) {
      await rejects(
        v,
        await sign(secretBytes, 'HS256', { device }),
        'token "device" is not a valid device id',
      );
    }
  });

  test('rejects an unsigned `alg: none` token', async () => {
    const payload = b64({ sub: 'alice', exp: now() + 3600 });
    await rejects(v, `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`);
    await rejects(v, `${b64({ alg: 'none' })}.${payload}.`);
    await rejects(v, `${b64({ alg: 'NONE' })}.${payload}.`);
  });

  test('rejects a token signed with a key type the configuration does not have', async () => {
    await rejects(v, await sign(ed.privateKey, 'EdDSA'));
    await rejects(v, 'not.a.token');
    await rejects(v, '');
  });
});

describe('TokenVerifier with PEM public keys', () => {
  for (const p of [ed, es, rs]) {
    test(`${p.alg}: accepts a token signed by the key, rejects one signed by another key`, async () => {
      const v = verifierFor({ jwtPublicKeys: p.pem });
      assert.equal((await v.verify(await sign(p.privateKey, p.alg, { sub: 'carol' }))).user, 'carol');
      const stranger = pair(p.alg === 'EdDSA' ? 'ed25519' : p.alg === 'ES256' ? 'es256' : 'rs256');
      await rejects(v, await sign(stranger.privateKey, p.alg));
      await rejects(v, await sign(p.privateKey, p.alg, { exp: now() - 60 }), 'token expired');
    });
  }

  test('an HS256 token is rejected when only public keys are configured (algorithm confusion)', async () => {
    const v = verifierFor({ jwtPublicKeys: `${rs.pem}${es.pem}` });
    // The classic attack: HMAC with the public key's PEM text (or DER) as the secret.
    await rejects(v, await sign(new TextEncoder().encode(rs.pem), 'HS256'));
    await rejects(v, await sign(rs.publicKey.export({ type: 'spki', format: 'der' }), 'HS256'));
    await rejects(v, await sign(secretBytes, 'HS256'));
  });

  test('several keys concatenated in one PEM string are all accepted', async () => {
    const pem = [ed.pem, es.pem, rs.pem].join('\n');
    const keys = parsePublicKeys(pem);
    assert.deepEqual(
      keys.map((k) => [k.alg, k.kid]),
      [
        ['EdDSA', 'key-1'],
        ['ES256', 'key-2'],
        ['RS256', 'key-3'],
      ],
    );
    const v = verifierFor({ jwtPublicKeys: pem });
    for (const p of [ed, es, rs]) {
      assert.equal(
        (await v.verify(await sign(p.privateKey, p.alg, { sub: `u-${p.alg}` }))).user,
        `u-${p.alg}`,
      );
    }
    assert.equal((await v.verify(await sign(es.privateKey, 'ES256', { kid: 'key-2' }))).user, 'alice');
    await rejects(v, await sign(es.privateKey, 'ES256', { kid: 'key-1' }));
    await rejects(v, await sign(ed2.privateKey, 'EdDSA'));
  });

  test('two keys of one type (a rotation): tokens without kid signed by either are accepted', async () => {
    const v = verifierFor({ jwtPublicKeys: `${ed.pem}${ed2.pem}` });
    assert.equal((await v.verify(await sign(ed.privateKey, 'EdDSA', { sub: 'old-key' }))).user, 'old-key');
    assert.equal((await v.verify(await sign(ed2.privateKey, 'EdDSA', { sub: 'new-key' }))).user, 'new-key');
    await rejects(v, await sign(pair('ed25519').privateKey, 'EdDSA'));
  });

  test('a PEM string without a public key, or with an unsupported key type, is refused', () => {
    assert.throws(() => parsePublicKeys('not a pem'), /no "BEGIN PUBLIC KEY" PEM block/);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' })
      .publicKey.export({ type: 'spki', format: 'pem' })
      .toString();
    assert.throws(() => parsePublicKeys(`${ed.pem}${p384}`), /public key 2: only Ed25519, EC P-256 and RSA/);
  });
});

describe('TokenVerifier issuer and audience', () => {
  const v = verifierFor({ jwtSecret: SECRET, jwtIssuer: 'https://id.example', jwtAudience: 'parley' });
  const good = { iss: 'https://id.example', aud: 'parley' };

  test('a token with the configured issuer and audience is accepted', async () => {
    assert.equal((await v.verify(await sign(secretBytes, 'HS256', good))).user, 'alice');
    assert.equal(
      (
        await v.verify(
          await mintToken(secretBytes, { user: 'dan', ttlSeconds: 60, issuer: good.iss, audience: 'parley' }),
        )
      ).user,
      'dan',
    );
  });

  test('a missing or wrong issuer is rejected', async () => {
    await rejects(v, await sign(secretBytes, 'HS256', { aud: 'parley' }));
    await rejects(v, await sign(secretBytes, 'HS256', { ...good, iss: 'https://evil.example' }));
  });

  test('a missing or wrong audience is rejected', async () => {
    await rejects(v, await sign(secretBytes, 'HS256', { iss: good.iss }));
    await rejects(v, await sign(secretBytes, 'HS256', { ...good, aud: 'other-app' }));
  });

  test('without configured issuer and audience, any are accepted', async () => {
    const open = verifierFor({ jwtSecret: SECRET });
    const token = await sign(secretBytes, 'HS256', { iss: 'anyone', aud: 'anything' });
    assert.equal((await open.verify(token)).user, 'alice');
  });
});

describe('TokenVerifier with a JWKS URL', () => {
  /** A JWKS endpoint on 127.0.0.1 whose key set can be swapped, counting requests. */
  async function jwksServer(
    keys: JWK[],
  ): Promise<{ url: string; requests: () => number; serve(keys: JWK[]): void; close(): Promise<void> }> {
    let body = JSON.stringify({ keys });
    let requests = 0;
    const server: Server = createServer((req, res) => {
      requests++;
      if (req.url !== '/jwks.json') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}/jwks.json`,
      requests: () => requests,
      serve(next) {
        body = JSON.stringify({ keys: next });
      },
      close: () =>
        new Promise((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  }
  const jwk = (p: Pair, kid: string): JWK => ({
    ...(p.publicKey.export({ format: 'jwk' }) as JWK),
    kid,
    alg: p.alg,
    use: 'sig',
  });

  test('a token whose kid is in the set is accepted; the set is fetched once and cached', async () => {
    const server = await jwksServer([jwk(es, 'es-1'), jwk(ed, 'ed-1')]);
    try {
      const v = verifierFor({ jwksUrl: server.url });
      assert.equal(
        (await v.verify(await sign(es.privateKey, 'ES256', { kid: 'es-1', sub: 'erin' }))).user,
        'erin',
      );
      assert.equal((await v.verify(await sign(ed.privateKey, 'EdDSA', { kid: 'ed-1' }))).user, 'alice');
      assert.equal(server.requests(), 1);
      // A known kid with a signature by another key is still rejected.
      await rejects(v, await sign(ed2.privateKey, 'EdDSA', { kid: 'ed-1' }));
      // JWKS keys are asymmetric only: no HS256, whatever the secret.
      await rejects(v, await sign(secretBytes, 'HS256', { kid: 'es-1' }));
    } finally {
      await server.close();
    }
  });

  test('unknown kids trigger at most one refetch per cooldown; a rotated key is picked up', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    const server = await jwksServer([jwk(es, 'old')]);
    try {
      const v = verifierFor({ jwksUrl: server.url });
      assert.equal((await v.verify(await sign(es.privateKey, 'ES256', { kid: 'old' }))).user, 'alice');
      assert.equal(server.requests(), 1);

      // Within the cooldown of that fetch, unknown kids fetch nothing.
      for (let i = 0; i < 5; i++)
        await rejects(v, await sign(rs.privateKey, 'RS256', { kid: `unknown-${i}` }));
      assert.equal(server.requests(), 1);

      // After the cooldown a burst of unknown kids (an attacker's, or a bug's) costs one fetch.
      t.mock.timers.tick(31_000);
      await Promise.all(
        Array.from({ length: 10 }, async (_, i) =>
          rejects(v, await sign(rs.privateKey, 'RS256', { kid: `burst-${i}` })),
        ),
      );
      for (let i = 0; i < 5; i++) await rejects(v, await sign(rs.privateKey, 'RS256', { kid: `later-${i}` }));
      assert.equal(server.requests(), 2);

      // The issuer rotates: the endpoint now serves only the new key.
      server.serve([jwk(rs, 'new')]);
      t.mock.timers.tick(31_000);
      assert.equal(
        (await v.verify(await sign(rs.privateKey, 'RS256', { kid: 'new', sub: 'rot' }))).user,
        'rot',
      );
      assert.equal(server.requests(), 3);
      // The retired key is gone with the old set.
      await rejects(v, await sign(es.privateKey, 'ES256', { kid: 'old' }));
      assert.equal(server.requests(), 3);
    } finally {
      await server.close();
    }
  });
});

describe('parseTtl', () => {
  test('parses seconds, minutes, hours and days, and plain seconds', () => {
    assert.equal(parseTtl('90s'), 90);
    assert.equal(parseTtl('15m'), 900);
    assert.equal(parseTtl('1h'), 3600);
    assert.equal(parseTtl('7d'), 7 * 86_400);
    assert.equal(parseTtl('120'), 120);
    assert.equal(parseTtl(' 5 m '), 300);
    assert.equal(parseTtl('0s'), 0);
  });

  test('rejects anything else with the accepted forms in the message', () => {
    for (const bad of ['', 'h', '1w', '-5s', '1.5h', '10 minutes', 'abc', '1h30m']) {
      assert.throws(() => parseTtl(bad), /invalid ttl .*e\.g\. 90s, 15m, 1h, 7d/, JSON.stringify(bad));
    }
  });
});

describe('resolveKeys', () => {
  test('with no keys configured, creates a 0600 development secret in the data dir and reuses it', async () => {
    const dataDir = newDataDir();
    const config = loadConfig({ overrides: { dataDir } });
    const first = resolveKeys(config);
    assert.equal(first.devSecret, true);
    assert.ok(first.secret && first.secret.length >= 32, 'a secret of at least 32 bytes');
    const file = join(dataDir, 'dev-jwt-secret');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(readFileSync(file, 'utf8').trim(), new TextDecoder().decode(first.secret));

    const second = resolveKeys(config);
    assert.equal(second.devSecret, true);
    assert.deepEqual(second.secret, first.secret);
    // A token minted before a restart still verifies after it.
    const token = await mintToken(first.secret!, { user: 'alice', ttlSeconds: 60 });
    assert.equal((await new TokenVerifier(second, config).verify(token)).user, 'alice');
    // Another data directory gets another secret.
    const other = resolveKeys(loadConfig({ overrides: { dataDir: newDataDir() } }));
    assert.notDeepEqual(other.secret, first.secret);
  });

  test('configured keys never create a development secret', () => {
    const withSecret = newDataDir();
    const s = resolveKeys(loadConfig({ overrides: { dataDir: withSecret, jwtSecret: SECRET } }));
    assert.equal(s.devSecret, false);
    assert.deepEqual(s.secret, secretBytes);
    const withPem = newDataDir();
    const p = resolveKeys(loadConfig({ overrides: { dataDir: withPem, jwtPublicKeys: ed.pem } }));
    assert.equal(p.secret, undefined);
    assert.equal(p.publicKeys.length, 1);
    const withJwks = newDataDir();
    const j = resolveKeys(
      loadConfig({ overrides: { dataDir: withJwks, jwksUrl: 'https://id.example/jwks.json' } }),
    );
    assert.equal(j.secret, undefined);
    assert.equal(j.jwksUrl, 'https://id.example/jwks.json');
    for (const d of [withSecret, withPem, withJwks])
      assert.equal(existsSync(join(d, 'dev-jwt-secret')), false);
  });
});

describe('token lifetime (maxTokenLifetimeMs)', () => {
  const v = verifierFor({ jwtSecret: SECRET, maxTokenLifetimeMs: 3600_000 });
  const sign = (claims: { iat?: number; exp: number; device?: string }) => {
    const jwt = new SignJWT(claims.device ? { device: claims.device } : {})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setExpirationTime(claims.exp);
    if (claims.iat !== undefined) jwt.setIssuedAt(claims.iat);
    return jwt.sign(secretBytes);
  };
  const tooLong = 'token lifetime exceeds the 1h this server accepts';

  test('a token living up to the limit is accepted', async () => {
    assert.equal((await v.verify(await sign({ iat: now(), exp: now() + 3600 }))).user, 'alice');
    assert.equal((await v.verify(await sign({ exp: now() + 3000 }))).user, 'alice');
  });

  test('exp decades away is refused, with or without iat, with or without a device claim', async () => {
    const decades = now() + 30 * 365 * 86400;
    await rejects(v, await sign({ iat: now(), exp: decades }), tooLong);
    await rejects(v, await sign({ exp: decades }), tooLong);
    await rejects(v, await sign({ iat: now(), exp: decades, device: 'phone' }), tooLong);
    await rejects(v, await sign({ iat: now() - 60, exp: now() + 3600 }), tooLong);
  });

  test('an iat in the future does not stretch the window', async () => {
    await rejects(v, await sign({ iat: now() + 10 * 86400, exp: now() + 10 * 86400 + 60 }), tooLong);
  });

  test('the default is 24 hours', async () => {
    const d = verifierFor({ jwtSecret: SECRET });
    assert.equal((await d.verify(await sign({ iat: now(), exp: now() + 86400 }))).user, 'alice');
    await rejects(
      d,
      await sign({ iat: now(), exp: now() + 86400 + 60 }),
      'token lifetime exceeds the 24h this server accepts',
    );
  });
});
