/**
 * The JSON codec of subprotocol `parley.v1.json`: one frame per WebSocket text message. Kept
 * behind two functions so that a binary subprotocol can be added with the same frame types.
 *
 * @module
 */

import type {
  AppEvent,
  InboxEvent,
  MessageObject,
  PresenceEvent,
  ReceiptEvent,
  ServerFrame,
  ToDeviceEvent,
  TypingEvent,
} from './frames.js';

/**
 * Encodes any frame (client request, reply or event) as the text of one WebSocket message.
 * Fields whose value is `undefined` are left out, as JSON has no undefined.
 */
export function encodeFrame(frame: object): string {
  return JSON.stringify(frame);
}

/** Encodes an event that is not an inbox event (presence, typing, `to_device`). */
export function encodeEvent(event: PresenceEvent | TypingEvent | ToDeviceEvent | AppEvent): string {
  return JSON.stringify(event);
}

/**
 * An inbox event's JSON comes in two parts around its inbox number,
 * `${inboxEventHead(type)}${inbox},${inboxEventTail(fields)}`: the number differs for each
 * recipient, the tail (the message, often large) does not, so a server encodes it once for all.
 * This is the head: everything before the number.
 */
export function inboxEventHead(type: InboxEvent['type']): string {
  return `{"type":"${type}","inbox":`;
}

/** The tail of an inbox event (see `inboxEventHead`): its fields after `type` and `inbox`. */
export function inboxEventTail(fields: MessageObject | Omit<ReceiptEvent, 'type' | 'inbox'>): string {
  return JSON.stringify(fields).slice(1);
}

/**
 * Decodes a frame received from the server, for clients. Returns null unless the text is a JSON
 * object with a string `type`; it does not validate fields (the server is trusted, and clients
 * must ignore frame types and fields they do not know, so that servers can add them).
 */
export function decodeServerFrame(text: string): ServerFrame | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  return typeof (value as { type?: unknown }).type === 'string' ? (value as ServerFrame) : null;
}
