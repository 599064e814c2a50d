import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isInwardAddress } from './public-address.js';

test('inward addresses: loopback, private, link-local, CGNAT, multicast, unspecified, mapped IPv4', () => {
  for (const a of [
    '127.0.0.1',
    '10.0.0.1',
    '172.16.5.4',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '::1',
    '::',
    'fd00::1',
    'fe80::1',
    '::ffff:10.0.0.1',
    '::ffff:127.0.0.1',
  ])
    assert.equal(isInwardAddress(a), true, a);
  for (const a of [
    '8.8.8.8',
    '1.1.1.1',
    '172.32.0.1',
    '192.169.0.1',
    '2606:4700:4700::1111',
    '::ffff:8.8.8.8',
    'push.example.org',
  ])
    assert.equal(isInwardAddress(a), false, a);
});
