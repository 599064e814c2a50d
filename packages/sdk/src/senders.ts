import { type MessageObject, SERVICE_ACCOUNT_DEVICE } from '@parley/protocol';

/**
 * Whether a message came from a service account: a bot of the app's backend, which sends through
 * the server API and has no devices. Show such messages as a bot's.
 */
export function fromServiceAccount(m: Pick<MessageObject, 'from_device'>): boolean {
  return m.from_device === SERVICE_ACCOUNT_DEVICE;
}
