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

/** A mute with no end (`mute` without `until`). */
export const MUTED_FOREVER = Number.MAX_SAFE_INTEGER;

/** Per-user state: settings, blocks, last seen, and which conversations the user muted. */
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
  /**
   * Mutes `conv` for `user` until `until` (ms since the epoch; `MUTED_FOREVER` for no end), or
   * with null unmutes it; resolves once durable.
   */
  setMute(user: string, conv: string, until: number | null): Promise<void>;
  /** Of `convs`, those `user` muted, with the time each mute ends (ended mutes may be absent or listed). */
  mutes(user: string, convs: readonly string[]): Promise<Map<string, number>>;
}
