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
  };
}
