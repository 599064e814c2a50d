/**
 * Protocol version, subprotocol name and size limits shared by the server, the SDK and every
 * other client. The server enforces these; clients use them to refuse a frame before sending it.
 *
 * @module
 */

/**
 * The protocol version this package implements. Bumped only for changes that old clients
 * cannot ignore; additive changes (new optional fields, new ops) keep version 1.
 */
export const PROTOCOL_VERSION = 1;

/**
 * WebSocket subprotocol name for JSON frames. A client offers it in `Sec-WebSocket-Protocol`;
 * a client that offers none also gets JSON. Binary encodings would be `parley.v1.<name>`.
 */
export const SUBPROTOCOL_JSON = 'parley.v1.json';

/**
 * Size and count limits applied by the frame validator. One object so that a server can
 * configure them in one place and pass them to {@link validateClientFrame}; the defaults are
 * {@link DEFAULT_LIMITS}. "Characters" are UTF-16 code units (ids are ASCII, so the same as
 * bytes), except `maxGroupNameLength`, which counts Unicode code points.
 */
export interface Limits {
  /** Largest WebSocket text frame, in UTF-8 bytes. Default 131072 (128 KiB). */
  maxFrameBytes: number;
  /** Largest `body` of `send` and `to_device`, in UTF-8 bytes. Default 65536 (64 KiB). */
  maxBodyBytes: number;
  /** Longest request `id`. Default 64. */
  maxRequestIdLength: number;
  /** Longest client message id (`cmid`). Default 64. */
  maxCmidLength: number;
  /** Longest message `kind`. Default 32. */
  maxKindLength: number;
  /** Longest group `name`, in code points. Default 128. */
  maxGroupNameLength: number;
  /** Most members in a group, and most users in one `create_group`/`add_members`/`remove_members`. Default 512. */
  maxGroupSize: number;
  /** Largest `sync` `limit`. Default 1000. */
  maxSyncLimit: number;
  /** Largest `history` `limit`. Default 200. */
  maxHistoryLimit: number;
  /** Largest `conversations` `limit`. Default 200. */
  maxConversationsLimit: number;
  /** Most users in one `presence_sub`/`presence_unsub` (and subscriptions per connection). Default 1000. */
  maxPresenceUsers: number;
  /** Most media ids on one message. Default 16. */
  maxMediaPerMessage: number;
  /** Longest `connect` `token` (a JWT). Default 8192. */
  maxTokenLength: number;
  /** Longest `connect` `client` name. Default 128. */
  maxClientNameLength: number;
}

/** The limits of protocol.md; what the validator uses when it is given none. Frozen. */
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxFrameBytes: 131072,
  maxBodyBytes: 65536,
  maxRequestIdLength: 64,
  maxCmidLength: 64,
  maxKindLength: 32,
  maxGroupNameLength: 128,
  maxGroupSize: 512,
  maxSyncLimit: 1000,
  maxHistoryLimit: 200,
  maxConversationsLimit: 200,
  maxPresenceUsers: 1000,
  maxMediaPerMessage: 16,
  maxTokenLength: 8192,
  maxClientNameLength: 128,
});

/** `limit` of a `sync` that gives none (capped at `maxSyncLimit`). */
export const DEFAULT_SYNC_LIMIT = 500;
/** `limit` of a `history` that gives none (capped at `maxHistoryLimit`). */
export const DEFAULT_HISTORY_LIMIT = 50;
/** `limit` of a `conversations` that gives none (capped at `maxConversationsLimit`). */
export const DEFAULT_CONVERSATIONS_LIMIT = 50;

// Fixed bounds that are not configurable: they follow from the formats of the fields (key sizes,
// push provider token formats, URL lengths) rather than from server capacity.

/** Most one-time prekeys in one `keys_upload`. */
export const MAX_ONE_TIME_PREKEYS = 200;
/** Longest base64 key or signature in `keys_upload` (a public key is ~44 chars). */
export const MAX_KEY_LENGTH = 1024;
/** Longest media id (`media`, `media_download`). Media ids are made by the server. */
export const MAX_MEDIA_ID_LENGTH = 128;
/** Longest `media_upload` `content_type`. */
export const MAX_CONTENT_TYPE_LENGTH = 255;
/** Longest push `token` (APNs hex token or FCM registration token). */
export const MAX_PUSH_TOKEN_LENGTH = 4096;
/** Longest APNs `topic` (a bundle id, possibly with a `.voip`-style suffix). */
export const MAX_PUSH_TOPIC_LENGTH = 255;
/** Longest push endpoint URL (Web Push `subscription.endpoint`, UnifiedPush `endpoint`). */
export const MAX_PUSH_ENDPOINT_LENGTH = 2048;
/** Longest Web Push `subscription.keys.p256dh` / `auth` (base64url; 87 and 22 chars in practice). */
export const MAX_PUSH_KEY_LENGTH = 256;
