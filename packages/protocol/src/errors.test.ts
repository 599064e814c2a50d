import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CloseCode,
  DEFAULT_CONVERSATIONS_LIMIT,
  DEFAULT_HISTORY_LIMIT,
  DEFAULT_LIMITS,
  DEFAULT_SYNC_LIMIT,
  ERROR_CODES,
  ERROR_HTTP_STATUS,
  isErrorCode,
  PROTOCOL_VERSION,
  SUBPROTOCOL_JSON,
} from './index.js';

describe('error codes', () => {
  it('lists exactly the protocol error codes with their HTTP statuses', () => {
    assert.deepEqual(ERROR_HTTP_STATUS, {
      bad_request: 400,
      unauthorized: 401,
      forbidden: 403,
      not_found: 404,
      too_large: 413,
      rate_limited: 429,
      conflict: 409,
      unavailable: 503,
      internal: 500,
      gone: 410,
    });
    assert.deepEqual([...ERROR_CODES].sort(), Object.keys(ERROR_HTTP_STATUS).sort());
    assert.equal(new Set(ERROR_CODES).size, 10);
  });
  it('isErrorCode accepts only own codes', () => {
    for (const c of ERROR_CODES) assert.equal(isErrorCode(c), true);
    for (const c of ['toString', '__proto__', 'constructor', 'BAD_REQUEST', '', 400, null]) {
      assert.equal(isErrorCode(c), false, String(c));
    }
  });
  it('tables are frozen', () => {
    assert.ok(Object.isFrozen(ERROR_HTTP_STATUS));
    assert.ok(Object.isFrozen(ERROR_CODES));
  });
});

describe('close codes', () => {
  it('has the values of protocol.md', () => {
    assert.deepEqual(CloseCode, {
      Normal: 1000,
      GoingAway: 1001,
      Policy: 1008,
      MessageTooBig: 1009,
      ServiceRestart: 1012,
      TryAgainLater: 1013,
      ProtocolAbuse: 4400,
      TokenInvalid: 4401,
      ConnectTimeout: 4408,
      Replaced: 4409,
      TooManyConnections: 4429,
    });
  });
});

describe('version and limits', () => {
  it('names version 1 and its JSON subprotocol', () => {
    assert.equal(PROTOCOL_VERSION, 1);
    assert.equal(SUBPROTOCOL_JSON, 'parley.v1.json');
  });
  it('has the default limits of protocol.md, frozen', () => {
    assert.deepEqual(DEFAULT_LIMITS, {
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
    assert.ok(Object.isFrozen(DEFAULT_LIMITS));
    assert.equal(DEFAULT_SYNC_LIMIT, 500);
    assert.equal(DEFAULT_HISTORY_LIMIT, 50);
    assert.equal(DEFAULT_CONVERSATIONS_LIMIT, 50);
  });
});
