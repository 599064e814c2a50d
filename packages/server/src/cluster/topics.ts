/** The stages' topics: what each is keyed by is what gives its consumers single ownership. */
export const TOPICS = {
  /** Sends and group changes, keyed by conversation: one sequencer per conversation. */
  ingress: 'ingress',
  /** Inbox work, keyed by recipient user: one inbox writer per user. */
  fanout: 'fanout',
  /** Push notifications to send, keyed by user. */
  push: 'push',
  /** Webhook deliveries, keyed by endpoint and conversation (or user): one sender per key. */
  webhooks: 'webhooks',
} as const;
