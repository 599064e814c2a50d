// `parley migrate-cluster` against the real engines: creates the keyspace, tables and topics,
// and running it again changes nothing.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { migrateCassandra } from '@parley/cluster/cassandra/schema';
import { Client } from 'cassandra-driver';
import { Kafka, logLevel } from 'kafkajs';
import { SOURCE_CLI } from './child-server.js';
import { requireEngine } from './engines.js';

const run = promisify(execFile);
const cassandra = requireEngine('cassandra', 'parley migrate-cluster against real Cassandra and Kafka');
const kafka =
  cassandra === undefined ? undefined : requireEngine('kafka', 'parley migrate-cluster against real Kafka');

if (cassandra !== undefined && kafka !== undefined) {
  test('migrate-cluster creates the keyspace, its tables and the topics, and is idempotent', async () => {
    const id = randomBytes(3).toString('hex');
    const keyspace = `parley_migrate_${id}`;
    const prefix = `parley-migrate-${id}.`;
    const dc = process.env.PARLEY_TEST_CASSANDRA_DC ?? 'datacenter1';
    const args = [
      'migrate-cluster',
      '--cassandra',
      cassandra,
      '--cassandra-dc',
      dc,
      '--keyspace',
      keyspace,
      '--replication-factor',
      '1',
      '--kafka',
      kafka,
      '--partitions',
      '6',
      '--topic-prefix',
      prefix,
    ];
    const parley = () =>
      run(process.execPath, [...SOURCE_CLI, ...args], { env: { PATH: process.env.PATH ?? '' } });
    const first = await parley();
    assert.match(
      first.stdout,
      new RegExp(`topics created: ${prefix}ingress, ${prefix}fanout, ${prefix}push, ${prefix}webhooks`),
    );
    const second = await parley();
    assert.match(second.stdout, /topics created: none/);

    const client = new Client({ contactPoints: [cassandra], localDataCenter: dc });
    const admin = new Kafka({ clientId: 't', brokers: [kafka], logLevel: logLevel.NOTHING }).admin();
    try {
      const tables = await client.execute(
        'SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?',
        [keyspace],
      );
      assert.deepEqual(tables.rows.map((r) => r.table_name).sort(), [
        'blocks',
        'conversations',
        'device_keys',
        'device_messages',
        'device_revocations',
        'devices_by_user',
        'inbox',
        'inbox_heads',
        'invites',
        'last_seen',
        'media',
        'media_conversations',
        'media_due',
        'media_due_buckets',
        'members',
        'message_cmids',
        'messages',
        'mutes',
        'one_time_prekeys',
        'push_dead_letter_buckets',
        'push_dead_letters',
        'stage_epochs',
        'user_conversations',
        'user_settings',
        'watermarks',
        'webhook_dead_letter_buckets',
        'webhook_dead_letters',
      ]);
      const ks = await client.execute(
        'SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?',
        [keyspace],
      );
      assert.equal(ks.first()?.replication[dc], '1');
      await admin.connect();
      const meta = await admin.fetchTopicMetadata({
        topics: [`${prefix}ingress`, `${prefix}fanout`, `${prefix}push`, `${prefix}webhooks`],
      });
      for (const t of meta.topics) assert.equal(t.partitions.length, 6, t.name);
      const configs = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [
          {
            type: 2,
            name: `${prefix}ingress`,
            configNames: ['min.insync.replicas', 'unclean.leader.election.enable'],
          },
        ],
      });
      const entries = Object.fromEntries(
        configs.resources[0]!.configEntries.map((e) => [e.configName, e.configValue]),
      );
      assert.deepEqual(entries, { 'min.insync.replicas': '1', 'unclean.leader.election.enable': 'false' });
    } finally {
      await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => {});
      await client.shutdown();
      await admin
        .deleteTopics({
          topics: [`${prefix}ingress`, `${prefix}fanout`, `${prefix}push`, `${prefix}webhooks`],
        })
        .catch(() => {});
      await admin.disconnect();
    }
  });

  test('migrate-cluster adds the columns a keyspace made by an older release lacks', async () => {
    const keyspace = `parley_migrate_${randomBytes(3).toString('hex')}`;
    const dc = process.env.PARLEY_TEST_CASSANDRA_DC ?? 'datacenter1';
    const client = new Client({ contactPoints: [cassandra], localDataCenter: dc });
    const replication = { class: 'NetworkTopologyStrategy', [dc]: 1 } as const;
    try {
      await client.execute(
        `CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'NetworkTopologyStrategy', '${dc}': 1}`,
      );
      // The chat list as the first release created it.
      await client.execute(
        `CREATE TABLE ${keyspace}.user_conversations (user text, conv text, last_ts bigint, PRIMARY KEY ((user), conv))`,
      );
      await client.execute(
        `INSERT INTO ${keyspace}.user_conversations (user, conv, last_ts) VALUES ('ann', 'g:a', 10)`,
      );
      await migrateCassandra(client, keyspace, replication);
      await migrateCassandra(client, keyspace, replication);
      const row = await client.execute(
        `SELECT last_ts, last_seq FROM ${keyspace}.user_conversations WHERE user = 'ann' AND conv = 'g:a'`,
      );
      assert.equal(Number(row.first()?.last_ts), 10, 'the existing row is kept');
      assert.equal(row.first()?.last_seq, null, 'the new column starts empty');
    } finally {
      await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => {});
      await client.shutdown();
    }
  });
}
