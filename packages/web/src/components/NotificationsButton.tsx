/**
 * "Enable notifications": Web Push for this device, asked for only when the user clicks (browsers
 * refuse, or punish, permission prompts that come unasked).
 */

import { useState } from 'preact/hooks';
import { useStore } from '../lib/context.js';
import { enableNotifications, type PushOutcome, pushSupported } from '../lib/push.js';
import { Icon } from './Icon.js';

const LABELS: Record<PushOutcome | 'working', string> = {
  working: 'Enabling…',
  enabled: 'Notifications on',
  denied: 'Notifications blocked',
  unsupported: 'No notifications in this browser',
  unavailable: 'Server has no Web Push',
};

export function NotificationsButton() {
  const store = useStore();
  const [outcome, setOutcome] = useState<PushOutcome | 'working' | null>(null);
  if (!pushSupported()) return null;
  const enable = async () => {
    setOutcome('working');
    try {
      setOutcome(await enableNotifications(store.client));
    } catch (err) {
      setOutcome(null);
      store.report('Could not enable notifications', err);
    }
  };
  return (
    <button
      type="button"
      class="ghost"
      data-testid="notifications-button"
      disabled={outcome !== null && outcome !== 'denied'}
      onClick={() => void enable()}
    >
      <Icon name="bell" />
      <span class="wide-label">{outcome === null ? 'Enable notifications' : LABELS[outcome]}</span>
    </button>
  );
}
