import { createPublicKey, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeviceId, isUserId } from '@parley/protocol';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  type JWK,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  jwtVerify,
  SignJWT,
} from 'jose';
import type { Config } from '../config/schema.js';
import { ParleyError } from '../domain/errors.js';

/** What a verified token says about its bearer. */
export interface TokenClaims {
  user: string;
  /** Set when the token is bound to one device. */
  device?: string;
  /** Expiry, milliseconds since the epoch. */
  expiresAt: number;
  /** When it was issued (`iat`), ms since the epoch; 0 when the token does not say. */
  issuedAt: number;
}

/** The keys tokens are checked against, resolved from the configuration. */
export interface KeySetup {
  secret?: Uint8Array;
  /** True when the secret is a development secret generated into the data directory. */
  devSecret: boolean;
  publicKeys: JWK[];
  jwksUrl?: string;
}

const DEV_SECRET_FILE = 'dev-jwt-secret';
/** Seconds of clock difference between the token's issuer and this server that are forgiven. */
const CLOCK_TOLERANCE_S = 5;
const JWKS_ALGORITHMS = ['EdDSA', 'Ed25519', 'ES256', 'RS256'];

/** Reads the configured keys; with none configured, loads or creates the development secret. */
export function resolveKeys(config: Config): KeySetup {
  const publicKeys = config.jwtPublicKeys ? parsePublicKeys(config.jwtPublicKeys) : [];
  const setup: KeySetup = { devSecret: false, publicKeys };
  if (config.jwksUrl) setup.jwksUrl = config.jwksUrl;
  if (config.jwtSecret) {
    setup.secret = new TextEncoder().encode(config.jwtSecret);
  } else if (publicKeys.length === 0 && !config.jwksUrl) {
    setup.secret = new TextEncoder().encode(loadOrCreateDevSecret(config.dataDir));
    setup.devSecret = true;
  }
  return setup;
}

function loadOrCreateDevSecret(dataDir: string): string {
  const path = join(dataDir, DEV_SECRET_FILE);
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  return secret;
}

/** Splits concatenated PEM public keys and turns each into a JWK with its algorithm fixed. */
export function parsePublicKeys(pem: string): JWK[] {
  const blocks = pem.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? [];
  if (blocks.length === 0) throw new Error('jwtPublicKeys holds no "BEGIN PUBLIC KEY" PEM block');
  return blocks.map((block, i) => {
    const key = createPublicKey(block);
    const jwk = key.export({ format: 'jwk' }) as JWK;
    if (key.asymmetricKeyType === 'ed25519') jwk.alg = 'EdDSA';
    else if (key.asymmetricKeyType === 'ec' && jwk.crv === 'P-256') jwk.alg = 'ES256';
    else if (key.asymmetricKeyType === 'rsa') jwk.alg = 'RS256';
    else throw new Error(`public key ${i + 1}: only Ed25519, EC P-256 and RSA keys are supported`);
    jwk.kid ??= `key-${i + 1}`;
    return jwk;
  });
}

/**
 * Verifies client tokens. The accepted algorithms come from the configured keys only (HS256 for a
 * secret, the key type for each public key, the asymmetric set for a JWKS URL), never from the
 * token; `exp` and `sub` are required; `iss` and `aud` are checked when configured. An unknown
 * `kid` refetches the JWKS at most once per cooldown.
 */
export class TokenVerifier {
  private readonly getKey: JWTVerifyGetKey;
  private readonly options: JWTVerifyOptions;
  private readonly maxLifetimeS: number;

  constructor(keys: KeySetup, config: Pick<Config, 'jwtIssuer' | 'jwtAudience' | 'maxTokenLifetimeMs'>) {
    this.maxLifetimeS = config.maxTokenLifetimeMs / 1000;
    const algorithms = new Set<string>();
    if (keys.secret) algorithms.add('HS256');
    for (const k of keys.publicKeys) algorithms.add(k.alg!);
    if (keys.jwksUrl) for (const a of JWKS_ALGORITHMS) algorithms.add(a);
    const local = keys.publicKeys.length > 0 ? createLocalJWKSet({ keys: keys.publicKeys }) : null;
    const remote = keys.jwksUrl
      ? createRemoteJWKSet(new URL(keys.jwksUrl), {
          cooldownDuration: 30_000,
          cacheMaxAge: 600_000,
          timeoutDuration: 5_000,
        })
      : null;
    const secret = keys.secret;
    this.getKey = async (header, token) => {
      if (header.alg === 'HS256') {
        if (!secret) throw new Error('no secret');
        return secret;
      }
      if (local) {
        try {
          return await local(header, token);
        } catch (err) {
          if (!remote) throw err;
        }
      }
      if (remote) return remote(header, token);
      throw new Error('no key');
    };
    this.options = {
      algorithms: [...algorithms],
      requiredClaims: ['exp', 'sub'],
      clockTolerance: CLOCK_TOLERANCE_S,
    };
    if (config.jwtIssuer) this.options.issuer = config.jwtIssuer;
    if (config.jwtAudience) this.options.audience = config.jwtAudience;
  }

  /**
   * Several keys of one algorithm without a `kid` in the token (the usual state during a key
   * rotation) make the key set throw "multiple matching keys"; then each candidate is tried.
   */
  private async verifyWithAnyKey(token: string): Promise<Record<string, unknown>> {
    try {
      return (await jwtVerify(token, this.getKey, this.options)).payload;
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') throw err;
      let last: unknown = err;
      for await (const key of err as AsyncIterable<Parameters<typeof jwtVerify>[1]>) {
        try {
          return (await jwtVerify(token, key, this.options)).payload;
        } catch (e) {
          if ((e as { code?: string }).code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') throw e;
          last = e;
        }
      }
      throw last;
    }
  }

  /**
   * Refuses tokens that live longer than `maxTokenLifetimeMs`: a leaked token with an `exp`
   * decades away would be a permanent credential. Both `exp − iat` and `exp − now` count (an
   * `iat` in the future must not stretch the window), with the verifier's clock tolerance.
   */
  private checkLifetime(payload: Record<string, unknown>): void {
    const exp = payload.exp as number;
    const nowS = Date.now() / 1000;
    const issued = typeof payload.iat === 'number' ? Math.min(payload.iat, nowS) : nowS;
    if (exp - issued > this.maxLifetimeS + CLOCK_TOLERANCE_S)
      throw new ParleyError(
        'unauthorized',
        `token lifetime exceeds the ${formatDuration(this.maxLifetimeS)} this server accepts`,
      );
  }

  /** Verifies a token; throws `unauthorized` with a reason a client can act on. */
  async verify(token: string): Promise<TokenClaims> {
    let payload: Record<string, unknown>;
    try {
      payload = await this.verifyWithAnyKey(token);
    } catch (err) {
      const code = (err as { code?: string }).code;
      const reason = code === 'ERR_JWT_EXPIRED' ? 'token expired' : 'invalid token';
      throw new ParleyError('unauthorized', reason);
    }
    this.checkLifetime(payload);
    if (!isUserId(payload.sub)) throw new ParleyError('unauthorized', 'token "sub" is not a valid user id');
    const claims: TokenClaims = {
      user: payload.sub,
      expiresAt: (payload.exp as number) * 1000,
      issuedAt: typeof payload.iat === 'number' ? payload.iat * 1000 : 0,
    };
    if (payload.device !== undefined) {
      if (!isDeviceId(payload.device))
        throw new ParleyError('unauthorized', 'token "device" is not a valid device id');
      claims.device = payload.device;
    }
    return claims;
  }
}

/** A duration in seconds as an operator writes it (`24h`, `90m`, `45s`). */
export function formatDuration(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

/** Parses a TTL such as `90s`, `15m`, `1h`, `7d` (or plain seconds) into seconds. */
export function parseTtl(ttl: string): number {
  const m = /^(\d+)\s*([smhd]?)$/.exec(ttl.trim());
  if (!m) throw new Error(`invalid ttl "${ttl}" (use e.g. 90s, 15m, 1h, 7d)`);
  const n = Number(m[1]);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  return n * unit;
}

/** Mints an HS256 token for `user` (the CLI's `parley token`, tests and benchmarks). */
export async function mintToken(
  secret: Uint8Array,
  claims: { user: string; device?: string; ttlSeconds: number; issuer?: string; audience?: string },
): Promise<string> {
  const jwt = new SignJWT(claims.device ? { device: claims.device } : {})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.user)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + claims.ttlSeconds);
  if (claims.issuer) jwt.setIssuer(claims.issuer);
  if (claims.audience) jwt.setAudience(claims.audience);
  return jwt.sign(secret);
}
