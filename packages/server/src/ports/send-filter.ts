import type { SendRequest } from './conversation-writer.js';

/** What a send filter decided about one message. */
export type SendVerdict =
  | { allow: true }
  /** Refused by the filter: the sender is told `reason`. */
  | { allow: false; reason: string }
  /** The filter could not decide and its policy is to fail closed: the sender retries later. */
  | { allow: false; unavailable: true };

/**
 * A check every client message passes before it is sequenced: the operator's moderation or spam
 * filter (the "before send" hook). It never throws: failures become a verdict by its policy.
 */
export interface SendFilter {
  check(message: SendRequest): Promise<SendVerdict>;
}
