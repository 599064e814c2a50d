/**
 * `@parley/protocol`: the Parley client protocol v1 as code. Frame types, the client frame
 * validator, id formats, error and close codes, limits, and the JSON codec. Shared by the server,
 * the SDK and any other client; browser-safe (no Node imports).
 *
 * @module
 */

export {
  decodeServerFrame,
  encodeEvent,
  encodeFrame,
  inboxEventHead,
  inboxEventTail,
} from './codec.js';
export { CloseCode, ERROR_CODES, ERROR_HTTP_STATUS, type ErrorCode, isErrorCode } from './errors.js';
export * from './frames.js';
export {
  directConv,
  directMembers,
  GROUP_CONV_RE,
  isConvId,
  isDeviceId,
  isGroupConv,
  isMediaId,
  isReservedDevice,
  isUserId,
  MAX_GROUP_ID_LENGTH,
  MAX_USER_ID_LENGTH,
  MEDIA_ID_RE,
  type ParsedConv,
  parseConv,
  SERVER_API_DEVICE,
  SERVICE_ACCOUNT_DEVICE,
  USER_ID_RE,
  utf8Length,
  utf8LengthExceeds,
} from './ids.js';
export * from './limits.js';
export {
  type FrameResult,
  parseClientFrame,
  RESERVED_KINDS,
  SYSTEM_CMID_PREFIX,
  validateClientFrame,
} from './validate.js';
