/** A user's privacy settings. */
export interface UserSettings {
  /** Off: the user's devices still sync their own `read`, but others get no read receipts from them, and they see none. */
  readReceipts: boolean;
  /** `nobody`: others see only online/offline, never a time. */
  lastSeen: 'everyone' | 'nobody';
  /** `nobody`: others cannot put the user in a group; the user joins through invites only. */
  groupAdd: 'everyone' | 'nobody';
}

/** What a user without stored settings has. */
export const DEFAULT_SETTINGS: Readonly<UserSettings> = Object.freeze({
  readReceipts: true,
  lastSeen: 'everyone',
  groupAdd: 'everyone',
});

/** Per-user state that is not part of any conversation: settings, blocks, last seen. */
export interface UserStore {
  /** The user's settings (the defaults when none are stored). */
  settings(user: string): Promise<UserSettings>;
  /** Stores settings; resolves once durable. */
  saveSettings(user: string, settings: UserSettings): Promise<void>;
  /** The users `user` has blocked. */
  blocked(user: string): Promise<string[]>;
  /** Blocks or unblocks `other` for `user`; resolves once durable. */
  setBlocked(user: string, other: string, blocked: boolean): Promise<void>;
  /** When each user's last device went away (users never seen are absent). */
  lastSeen(users: readonly string[]): Promise<Map<string, number>>;
  /** Records the time the user's last device went away (best effort, not awaited by callers). */
  saveLastSeen(user: string, ts: number): Promise<void>;
}
