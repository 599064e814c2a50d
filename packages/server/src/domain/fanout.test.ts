// Fair fan-out: a burst into a large group is cut into slices and conversations take turns, so a
// message committed after the burst reaches the inbox writer after at most one slice of it, not
// after all of it; each conversation's slices still go in seq order with their fan-out marks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryStore } from '../adapters/memory/memory-store.js';
import type { MessageDelivery } from '../ports/inbox-appender.js';
import type { FannedMark } from '../ports/inbox-store.js';
import { silentLogger } from '../ports/logger.js';
import type { StoredMessage } from '../ports/message-store.js';
import { Fanout } from './fanout.js';
import { InboxWriter } from './inbox-writer.js';

const message = (conv: string, seq: number): StoredMessage => ({
  conv,
  seq,
  ts: seq,
  from: 'sender',
  from_device: 'd',
  cmid: `${conv}-${seq}`,
  kind: 'text',
  body: 'x',
});

test('a message committed after a large group burst is handed in after one slice of it, not all', async () => {
  const store = new MemoryStore();
  const writer = new InboxWriter(store.inbox, { deliver: () => {} }, silentLogger);
  const order: string[] = [];
  const appender = new Proxy(writer, {
    get(target, prop, receiver) {
      if (prop === 'appendMessages') {
        return (deliveries: MessageDelivery[], fanned: FannedMark[]) => {
          order.push(`${deliveries[0]!.message.conv}:${fanned[0]!.seq}`);
          return target.appendMessages(deliveries, fanned);
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const fanout = new Fanout(appender, store.messages, store.conversations, silentLogger);
  const members = Array.from({ length: 512 }, (_, i) => `m${i}`);
  const burst = Array.from({ length: 40 }, (_, i) => message('g:big', i + 1));
  fanout.committed(
    burst,
    burst.map(() => members),
  );
  fanout.committed([message('dm:a:b', 1)], [['a', 'b']]);
  await fanout.settled();
  await writer.idle();
  // 40 messages × 512 recipients in slices of 2,048 entries (4 messages each): 10 slices. The
  // direct message goes second, right after the first slice.
  assert.equal(order.length, 11);
  assert.equal(order[1], 'dm:a:b:1');
  const groupMarks = order.filter((o) => o.startsWith('g:big')).map((o) => Number(o.split(':').at(-1)));
  assert.deepEqual(groupMarks, [4, 8, 12, 16, 20, 24, 28, 32, 36, 40], 'the group’s slices in seq order');
  assert.equal(await store.inbox.head('m7'), 40, 'every entry stored');
  assert.equal(await store.inbox.head('a'), 1);
});
