/**
 * Client tokens for the load: HS256 JWTs minted with jose, as a customer's backend would mint
 * them with the secret Parley is configured with. No server code is imported, so the bench can
 * target any deployment that shares the secret.
 * @module
 */
import { SignJWT } from 'jose';

/** Mints a token for `user` valid for `ttlSeconds`. */
export async function mintToken(secret: Uint8Array, user: string, ttlSeconds: number): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(user)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(secret);
}
