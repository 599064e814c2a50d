import type { WorkLimits } from '../domain/work-budget.js';
import type { Config } from './schema.js';

/** The per-user work budgets the configuration sets. */
export function workLimits(config: Config): WorkLimits {
  return {
    send: { ratePerSecond: config.sendRatePerSecond, burst: config.sendBurst },
    fanout: { ratePerSecond: config.fanoutRatePerSecond, burst: config.fanoutBurst },
    read: { ratePerSecond: config.readRatePerSecond, burst: config.readBurst },
    typing: { ratePerSecond: config.typingRatePerSecond, burst: config.typingBurst },
    presence: { ratePerSecond: config.presenceRatePerSecond, burst: config.presenceBurst },
    account: { ratePerSecond: config.accountRatePerSecond, burst: config.accountBurst },
    keys: { ratePerSecond: config.keysRatePerSecond, burst: config.keysBurst },
    keysClaim: { ratePerSecond: config.keysClaimRatePerSecond, burst: config.keysClaimBurst },
    keysClaimed: { ratePerSecond: config.keysClaimedRatePerSecond, burst: config.keysClaimedBurst },
    toDevice: { ratePerSecond: config.toDeviceRatePerSecond, burst: config.toDeviceBurst },
    media: { ratePerSecond: config.mediaRatePerSecond, burst: config.mediaBurst },
    uploadBytes: {
      ratePerSecond: config.mediaUploadBytesPerDay / 86_400,
      burst: config.mediaUploadBytesPerDay,
    },
  };
}
