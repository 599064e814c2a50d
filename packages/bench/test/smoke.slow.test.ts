// A short run of every scenario at tiny sizes against a spawned `parley serve` (the built
// packages/server/dist, which `npm test` builds first): it checks that the tool works end to end —
// the run succeeds, the JSON is written with non-zero counts, the HTML report holds its charts —
// not how fast the server is.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from '../src/model.js';

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const SERVER_CLI = fileURLToPath(new URL('../../server/dist/cli.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'parley-bench-smoke-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the CLI (from the sources, through tsx); resolves with its exit code and output. */
function bench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', CLI, ...args, '--quiet'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    proc.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    proc.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs a scenario and checks the common parts of its reports; returns the parsed JSON. */
async function runScenario(name: string, args: string[]): Promise<BenchResult> {
  const out = join(dir, name);
  const r = await bench([name, ...args, '--out', out]);
  assert.equal(r.code, 0, `bench ${name} failed:\n${r.stdout}\n${r.stderr}`);
  assert.ok(existsSync(`${out}.json`), 'JSON report written');
  const result = JSON.parse(readFileSync(`${out}.json`, 'utf8')) as BenchResult;
  assert.equal(result.scenario, name);
  assert.ok(result.phases.length > 0, 'phases recorded');
  assert.ok(result.timeline.length > 0, 'timeline recorded');
  assert.ok(result.summary.length > 0, 'summary rows');
  const html = readFileSync(`${out}.html`, 'utf8');
  assert.ok(/<svg[\s>]/.test(html), 'HTML report has SVG charts');
  assert.ok(!/<script|<link|\ssrc=|@import/.test(html), 'HTML report loads nothing from elsewhere');
  assert.match(r.stdout, /phase\s+latency \(ms\)/, 'table printed on stdout');
  return result;
}

const common = ['--server-cli', SERVER_CLI, '--procs', '2', '--drain', '3'];

describe('bench smoke (tiny sizes, checks the tool, not the speed)', {
  skip: !existsSync(SERVER_CLI) && 'server not built',
}, () => {
  test('connections: opens, heartbeats, samples the server', async () => {
    const r = await runScenario('connections', [
      ...common,
      '--connections',
      '60',
      '--duration',
      '1.5',
      '--server-env',
      'PARLEY_HEARTBEAT_MS=500',
    ]);
    const connect = r.phases.find((p) => p.name === 'connect')!;
    assert.equal(connect.facts.opened, 60);
    assert.ok((connect.rates.connects_per_s ?? 0) > 0);
    const idle = r.phases.find((p) => p.name === 'idle')!;
    assert.ok((idle.counters.pongs ?? 0) > 0, 'heartbeats answered');
    assert.ok(
      r.server.some((s) => s.rssBytes > 0),
      'server RSS sampled from /proc',
    );
    assert.ok(r.serverMetrics.length > 0, '/metrics scraped');
  });

  test('direct: relay and parley maxima, then the measured run', async () => {
    const r = await runScenario('direct', [
      ...common,
      '--users',
      '8',
      '--probe-rate',
      '100',
      '--probe-steps',
      '1',
      '--probe-seconds',
      '1',
      '--duration',
      '1.5',
      '--warmup',
      '0.5',
    ]);
    assert.ok(
      r.phases.some((p) => p.target === 'relay' && (p.counters.delivered ?? 0) > 0),
      'relay delivered',
    );
    const main = r.phases.at(-1)!;
    assert.equal(main.target, 'parley');
    assert.ok((main.latency.deliver?.count ?? 0) > 0, 'send→deliver measured');
    assert.ok((main.latency.reply?.count ?? 0) > 0, 'send→reply measured');
    assert.ok((main.counters.receipts_sent ?? 0) > 0, 'receivers sent delivered receipts');
    assert.equal(main.counters.errors ?? 0, 0);
    assert.ok(r.summary.some((s) => s.label === 'parley / relay throughput'));
  });

  test('relay-baseline: the relay alone at a fixed rate', async () => {
    const r = await runScenario('relay-baseline', [
      ...common,
      '--users',
      '4',
      '--probe-rate',
      '100',
      '--probe-steps',
      '1',
      '--probe-seconds',
      '1',
      '--rate',
      '50',
      '--duration',
      '1',
      '--warmup',
      '0.5',
    ]);
    assert.ok((r.phases.at(-1)!.counters.delivered ?? 0) > 0);
  });

  test('group: deliveries and last delivery per message', async () => {
    const r = await runScenario('group', [
      ...common,
      '--groups',
      '2',
      '--members',
      '12',
      '--senders',
      '2',
      '--rate',
      '20',
      '--duration',
      '1.5',
      '--warmup',
      '0.5',
    ]);
    const main = r.phases.at(-1)!;
    assert.ok((main.counters.delivered ?? 0) > 0);
    assert.ok((main.latency.last_delivery?.count ?? 0) > 0, 'last delivery merged across load processes');
    assert.equal(main.counters.messages_not_fully_delivered ?? 0, 0);
  });

  test('resume: offline fill, reconnect all, sync with paging', async () => {
    const r = await runScenario('resume', [
      ...common,
      '--clients',
      '40',
      '--missed',
      '5',
      '--group-size',
      '15',
      '--page',
      '2',
    ]);
    const phase = r.phases.at(-1)!;
    assert.equal(phase.counters.synced, 40);
    assert.equal(phase.counters.synced_events, 40 * 6, 'every missed message and the group creation synced');
    assert.ok((phase.counters.sync_pages ?? 0) >= 40 * 3, 'paged');
    assert.ok(Number(phase.facts.server_rss_peak_bytes) > 0);
  });

  test('push: offline devices get Web Push notifications, decrypted and timed', async () => {
    const r = await runScenario('push', [
      ...common,
      '--recipients',
      '12',
      '--push-senders',
      '3',
      '--low-rate',
      '20',
      '--low-duration',
      '1',
      '--duration',
      '1.5',
      '--warmup',
      '0.5',
    ]);
    assert.equal(r.phases[0]!.facts.registered, 12);
    const measured = r.phases.slice(1);
    assert.equal(measured.length, 2, 'light and full load');
    for (const p of measured) {
      assert.ok(Number(p.facts.messages_sent) > 0, `${p.name}: sent`);
      assert.equal(p.facts.missing_lost, 0, `${p.name}: every message notified or coalesced`);
      assert.ok((p.latency.push?.count ?? 0) > 0, `${p.name}: ts→push delay measured`);
      assert.ok(!Object.keys(p.facts).some((k) => k.startsWith('endpoint_refused')), 'no request refused');
    }
    assert.ok(
      r.timeline.some((t) => (t.counters.notified ?? 0) > 0),
      'notifications over time',
    );
  });

  test('webhooks: every stored message reaches the endpoint, signed, in order, timed', async () => {
    const r = await runScenario('webhooks', [...common, '--users', '4', '--rate', '10', '--duration', '2']);
    const p = r.phases.find((x) => x.latency.webhook)!;
    assert.ok(p, 'a phase measured the webhook delay');
    assert.ok((p.latency.webhook?.count ?? 0) > 0, 'ts→endpoint delay measured');
    assert.equal(p.facts.webhook_events_missing, 0);
    assert.equal(p.facts.webhook_signature_failures, 0);
    assert.equal(p.facts.webhook_out_of_order, 0);
  });
});
