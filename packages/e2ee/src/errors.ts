/**
 * The one error class of `@parley/e2ee`, with a fixed set of string codes so that callers branch
 * on `err.code` (show "waiting for this message", drop a forged message, warn about a changed
 * identity) and never on message text.
 *
 * @module
 */

/**
 * Every failure the package reports:
 * - `bad_input`: malformed envelope, key, JSON or argument (untrusted input that does not parse).
 * - `bad_signature`: a signed prekey or a sender-key message whose Ed25519 signature fails.
 * - `decrypt_failed`: AES-GCM authentication failed (tampered ciphertext, wrong key or context).
 * - `replay`: a message whose key was already used (and deleted), or an X3DH start seen before.
 * - `too_far_ahead`: a message more than the skipped-key bound ahead of its chain.
 * - `unknown_prekey`: an X3DH start naming a signed or one-time prekey this device does not have.
 * - `no_session`: a pairwise message for a session this device does not have.
 * - `missing_sender_key`: no sender key (yet) for a conversation message's sender device and key id.
 * - `key_not_shared`: a conversation message older than the sender key this device was given (sent
 *   before the device joined or was known to the sender): it stays unreadable here, by design.
 * - `digest_mismatch`: an attachment whose ciphertext does not match the pointer's SHA-256 digest.
 * - `own_device`: a conversation message this very device sent (its keys are gone by design).
 * - `too_large`: an envelope that would not fit the protocol's `body` limit.
 * - `not_started`: SecureMessenger used before `start()`.
 */
export type E2eeErrorCode =
  | 'bad_input'
  | 'bad_signature'
  | 'decrypt_failed'
  | 'replay'
  | 'too_far_ahead'
  | 'unknown_prekey'
  | 'no_session'
  | 'missing_sender_key'
  | 'key_not_shared'
  | 'digest_mismatch'
  | 'own_device'
  | 'too_large'
  | 'not_started';

/** A failure of an end-to-end encryption operation; `code` says which (see {@link E2eeErrorCode}). */
export class E2eeError extends Error {
  override readonly name = 'E2eeError';
  /** What failed (see {@link E2eeErrorCode}). */
  readonly code: E2eeErrorCode;

  constructor(code: E2eeErrorCode, message?: string) {
    super(message && message.length > 0 ? message : code);
    this.code = code;
  }

  /** Wraps anything thrown into an E2eeError (an existing one is returned as is). */
  static from(err: unknown, fallback: E2eeErrorCode = 'bad_input'): E2eeError {
    if (err instanceof E2eeError) return err;
    return new E2eeError(fallback, err instanceof Error ? err.message : String(err));
  }
}
