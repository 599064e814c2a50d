/**
 * Command-line options: one table of every option with its default and meaning, parsed with
 * node:util parseArgs, numbers checked, and the usage text generated from the same table.
 * @module
 */
import { parseArgs } from 'node:util';

/** The scenarios the tool runs. */
export const SCENARIOS = [
  'connections',
  'direct',
  'relay-baseline',
  'group',
  'resume',
  'hostile',
  'push',
  'media',
  'server-api',
  'webhooks',
] as const;
/** One of SCENARIOS. */
export type Scenario = (typeof SCENARIOS)[number];

/** Every option after parsing. */
export interface BenchOptions {
  scenario: Scenario;
  url?: string;
  metricsUrl?: string;
  secret?: string;
  serverPids: number[];
  serverArgs: string[];
  serverCli: string;
  serverNodeArgs: string[];
  serverEnv: Record<string, string>;
  procs: number;
  sourceAddrs: string;
  rate?: number;
  duration: number;
  warmup: number;
  drain: number;
  out?: string;
  bodyBytes: number;
  connectConcurrency: number;
  connectTimeout: number;
  quiet: boolean;
  connections: number;
  users: number;
  receipts: 'none' | 'per-message' | 'batched';
  receiptInterval: number;
  baseline: boolean;
  probeRate: number;
  probeSteps: number;
  probeSeconds: number;
  groups: number;
  members: number;
  senders: number;
  clients: number;
  missed: number;
  groupSize: number;
  page: number;
  fillWindow: number;
  reconnectConcurrency: number;
  sampleMs: number;
  scrapeInterval: number;
  /** hostile: which attacks (comma list, or all). */
  attacks?: string;
  /** push: offline users with a Web Push registration. */
  recipients: number;
  /** push: sender connections. */
  pushSenders: number;
  /** push: unanswered sends per sender when no --rate is given (as fast as possible). */
  window: number;
  /** push: the light-load phase's rate (msgs/s) and length (s); 0 s skips it. */
  lowRate: number;
  lowDuration: number;
  /** push: the server's PARLEY_PUSH_BURST_MS. */
  pushBurstMs: number;
  /** media: files transferred each way, and their size. */
  files: number;
  fileMib: number;
  /** media: the claim target's devices (500 one-time prekeys each), and concurrent claimers. */
  keyDevices: number;
  claimers: number;
  /** server-api: HTTP/2 (or HTTP/1.1) connections calling SendMessage, the protocol, and with --url where the API is and its key. */
  apiClients: number;
  apiProtocol: 'grpc' | 'grpc-web' | 'connect';
  apiUrl?: string;
  apiKey?: string;
}

type Spec = { type: 'string' | 'boolean'; default?: string; help: string; multiple?: boolean };

/** Every option, its default and what it does (the usage text is made from this). */
export const OPTION_SPECS: Record<string, Spec> = {
  url: {
    type: 'string',
    help: 'target an existing deployment (ws://host:port/v1/ws); default: spawn parley serve (push and webhooks always spawn their own: they configure its push service or webhook URL)',
  },
  secret: { type: 'string', help: 'HS256 secret of that deployment, to mint tokens (required with --url)' },
  'metrics-url': {
    type: 'string',
    help: 'its Prometheus endpoint on the admin listener (default: http://<url host>:9090/metrics)',
  },
  'server-pids': {
    type: 'string',
    help: 'comma-separated pids of the server processes to sample (children included)',
  },
  'server-args': {
    type: 'string',
    default: '',
    help: 'extra arguments for the spawned `parley serve` (e.g. "--workers 4")',
  },
  'server-cli': {
    type: 'string',
    help: 'path of the server CLI to spawn (default packages/server/dist/cli.js)',
  },
  'server-node-args': {
    type: 'string',
    default: '',
    help: 'node flags for the spawned server (e.g. "--max-old-space-size=8192")',
  },
  'server-env': {
    type: 'string',
    multiple: true,
    help: 'KEY=VALUE for the spawned server (repeatable), e.g. PARLEY_HEARTBEAT_MS=5000',
  },
  procs: {
    type: 'string',
    default: '2',
    help: 'load processes (raised so that none holds more than 15,000 sockets)',
  },
  'source-addrs': {
    type: 'string',
    default: 'auto',
    help: 'client source addresses: auto (127.0.0.2… for loopback targets), none, or a comma list',
  },
  rate: {
    type: 'string',
    help: 'offered load, messages/s over all senders (direct: default half the measured max, or 1000 with --no-baseline; group: 20; push: default as fast as --window allows; webhooks: 200)',
  },
  duration: {
    type: 'string',
    default: '10',
    help: 'measured seconds (connections: the idle window; hostile: each attack, default 60; push: default 20)',
  },
  warmup: {
    type: 'string',
    default: '2',
    help: 'seconds of load before the measured window (excluded from results)',
  },
  drain: {
    type: 'string',
    default: '10',
    help: 'seconds to wait after the load for outstanding replies and deliveries (push, webhooks: until the endpoint has been quiet this long; what has not come by then is missing)',
  },
  out: {
    type: 'string',
    help: 'output path without extension (default bench-results/<scenario>-<timestamp>)',
  },
  'body-bytes': { type: 'string', default: '100', help: 'message body size' },
  'connect-concurrency': {
    type: 'string',
    default: '200',
    help: 'handshakes in flight per load process while opening connections',
  },
  'connect-timeout': {
    type: 'string',
    default: '30000',
    help: 'ms a socket gets to complete the handshake and connect',
  },
  quiet: { type: 'boolean', default: 'false', help: 'no progress line' },
  connections: { type: 'string', default: '10000', help: 'connections: idle connections to open' },
  users: { type: 'string', default: '1000', help: 'direct, webhooks, server-api: online users, in pairs' },
  receipts: {
    type: 'string',
    default: 'batched',
    help: 'direct/group: delivered receipts: batched (one per conversation per interval), per-message, none',
  },
  'receipt-interval': {
    type: 'string',
    default: '200',
    help: 'ms between batched receipt flushes (the SDK default)',
  },
  baseline: {
    type: 'boolean',
    default: 'true',
    help: 'direct: also measure the relay baseline (--no-baseline to skip)',
  },
  'no-baseline': {
    type: 'boolean',
    default: 'false',
    help: 'direct: skip the relay baseline and the max-throughput search',
  },
  'probe-rate': {
    type: 'string',
    default: '1000',
    help: 'max-throughput search: first offered rate (doubles each step)',
  },
  'probe-steps': { type: 'string', default: '8', help: 'max-throughput search: most steps' },
  'probe-seconds': {
    type: 'string',
    default: '3',
    help: 'max-throughput search: measured seconds per step (after 1 s warm-up)',
  },
  groups: { type: 'string', default: '4', help: 'group: groups' },
  members: { type: 'string', default: '512', help: 'group: online members per group' },
  senders: { type: 'string', default: '4', help: 'group: members of each group that send' },
  clients: { type: 'string', default: '10000', help: 'resume: clients that reconnect' },
  missed: { type: 'string', default: '100', help: 'resume: messages each client missed while offline' },
  'group-size': { type: 'string', default: '500', help: 'resume: offline members per filling group' },
  page: { type: 'string', default: '500', help: 'resume: sync page size (limit)' },
  'fill-window': { type: 'string', default: '20', help: 'resume: unanswered sends per filling sender' },
  'reconnect-concurrency': {
    type: 'string',
    default: '0',
    help: 'resume: reconnects in flight per load process (0: all at once)',
  },
  'sample-ms': {
    type: 'string',
    default: '1000',
    help: 'server /proc sampling interval (resume samples at 100 ms during the reconnect)',
  },
  'scrape-interval': {
    type: 'string',
    default: '5',
    help: 'seconds between /metrics scrapes (for the event-loop stall; 0: start and end only)',
  },
  attacks: {
    type: 'string',
    default: 'all',
    help: 'hostile: attacks to run (sync-flood, http-history, typing-flood, idle-sockets, big-direct, read-flood, group-fanout)',
  },
  recipients: {
    type: 'string',
    default: '200',
    help: 'push: offline users, each with one device registered for Web Push',
  },
  'push-senders': { type: 'string', default: '20', help: 'push: sender connections (online users)' },
  files: { type: 'string', default: '5', help: 'media: files uploaded, then downloaded, one at a time' },
  'file-mib': { type: 'string', default: '10', help: 'media: size of each file (MiB)' },
  'key-devices': { type: 'string', default: '4', help: 'media: devices of the claim target (500 keys each)' },
  claimers: { type: 'string', default: '50', help: 'media: concurrent keys_claim connections' },
  window: {
    type: 'string',
    default: '8',
    help: 'push: unanswered sends per sender when no --rate is given (as fast as that allows); server-api: calls in flight per client',
  },
  'api-clients': { type: 'string', default: '4', help: 'server-api: client connections calling SendMessage' },
  'api-protocol': { type: 'string', default: 'grpc', help: 'server-api: grpc, grpc-web or connect (JSON)' },
  'api-url': { type: 'string', help: 'server-api with --url: the server API listener (http://host:port)' },
  'api-key': { type: 'string', help: 'server-api with --url: an API key with the messages scope' },
  'low-rate': { type: 'string', default: '20', help: 'push: the light-load phase, msgs/s' },
  'low-duration': {
    type: 'string',
    default: '10',
    help: 'push: measured seconds of the light-load phase (0: skip it)',
  },
  'push-burst-ms': {
    type: 'string',
    default: '0',
    help: "push: the server's PARLEY_PUSH_BURST_MS (0: no coalescing window, one notification per message)",
  },
  help: { type: 'boolean', default: 'false', help: 'this text' },
};

/** The usage text. */
export function usage(): string {
  const lines = [
    'usage: npm run bench -- <scenario> [options]',
    '',
    `scenarios: ${SCENARIOS.join(', ')} (see docs/benchmarks.md)`,
    '',
    'options:',
  ];
  for (const [name, s] of Object.entries(OPTION_SPECS)) {
    const flag = `--${name}${s.type === 'string' ? ' X' : ''}`;
    lines.push(`  ${flag.padEnd(28)} ${s.help}${s.type === 'string' && s.default ? ` [${s.default}]` : ''}`);
  }
  return lines.join('\n');
}

/** A usage mistake; the CLI prints it with the usage text. */
export class UsageError extends Error {}

function num(values: Record<string, unknown>, name: string, min = 0, integer = true): number {
  const raw = values[name];
  const n = Number(raw);
  if (
    typeof raw !== 'string' ||
    raw.trim() === '' ||
    Number.isNaN(n) ||
    n < min ||
    (integer && !Number.isInteger(n))
  )
    throw new UsageError(
      `--${name} must be ${integer ? 'an integer' : 'a number'} ≥ ${min} (got "${String(raw)}")`,
    );
  return n;
}

function words(s: unknown): string[] {
  return typeof s === 'string' ? s.split(/\s+/).filter(Boolean) : [];
}

function apiProtocolOf(v: unknown): BenchOptions['apiProtocol'] {
  if (v === 'grpc' || v === 'grpc-web' || v === 'connect') return v;
  throw new UsageError('--api-protocol must be grpc, grpc-web or connect');
}

/** Parses argv (after `node cli.js`); returns null for --help. */
export function parseOptions(argv: string[], defaultServerCli: string): BenchOptions | null {
  const options = Object.fromEntries(
    Object.entries(OPTION_SPECS).map(([k, s]) => {
      const o: { type: 'string' | 'boolean'; default?: string | boolean; multiple?: boolean } = {
        type: s.type,
      };
      if (s.default !== undefined) o.default = s.type === 'boolean' ? s.default === 'true' : s.default;
      if (s.type === 'boolean' && s.default === undefined) o.default = false;
      if (s.multiple) o.multiple = true;
      return [k, o];
    }),
  );
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const v = parsed.values as Record<string, unknown>;
  if (v.help) return null;
  const scenario = parsed.positionals[0];
  if (!scenario) throw new UsageError('name a scenario');
  if (!(SCENARIOS as readonly string[]).includes(scenario))
    throw new UsageError(`unknown scenario "${scenario}" (one of ${SCENARIOS.join(', ')})`);
  if (parsed.positionals.length > 1) throw new UsageError(`unexpected argument "${parsed.positionals[1]}"`);
  const receipts = String(v.receipts);
  if (receipts !== 'none' && receipts !== 'per-message' && receipts !== 'batched')
    throw new UsageError('--receipts must be batched, per-message or none');
  const serverEnv: Record<string, string> = {};
  for (const kv of (v['server-env'] as string[] | undefined) ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new UsageError(`--server-env wants KEY=VALUE (got "${kv}")`);
    serverEnv[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const url = v.url as string | undefined;
  if (url !== undefined && !/^wss?:\/\//.test(url))
    throw new UsageError('--url must start with ws:// or wss://');
  if (url !== undefined && v.secret === undefined)
    throw new UsageError("--url needs --secret (the deployment's HS256 secret) to mint tokens");
  const o: BenchOptions = {
    scenario: scenario as Scenario,
    serverPids: words(String(v['server-pids'] ?? '').replace(/,/g, ' ')).map((p) => {
      const n = Number(p);
      if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--server-pids: "${p}" is not a pid`);
      return n;
    }),
    serverArgs: words(v['server-args']),
    serverCli: (v['server-cli'] as string | undefined) ?? defaultServerCli,
    serverNodeArgs: words(v['server-node-args']),
    serverEnv,
    procs: num(v, 'procs', 1),
    sourceAddrs: String(v['source-addrs']),
    duration: num(v, 'duration', 0.1, false),
    warmup: num(v, 'warmup', 0, false),
    drain: num(v, 'drain', 0, false),
    bodyBytes: num(v, 'body-bytes', 1),
    connectConcurrency: num(v, 'connect-concurrency', 1),
    connectTimeout: num(v, 'connect-timeout', 100),
    quiet: v.quiet === true,
    connections: num(v, 'connections', 1),
    users: num(v, 'users', 2),
    receipts,
    receiptInterval: num(v, 'receipt-interval', 10),
    baseline: v.baseline !== false && v['no-baseline'] !== true,
    probeRate: num(v, 'probe-rate', 1, false),
    probeSteps: num(v, 'probe-steps', 1),
    probeSeconds: num(v, 'probe-seconds', 0.5, false),
    groups: num(v, 'groups', 1),
    members: num(v, 'members', 2),
    senders: num(v, 'senders', 1),
    clients: num(v, 'clients', 1),
    missed: num(v, 'missed', 1),
    groupSize: num(v, 'group-size', 1),
    page: num(v, 'page', 1),
    fillWindow: num(v, 'fill-window', 1),
    reconnectConcurrency: num(v, 'reconnect-concurrency', 0),
    sampleMs: num(v, 'sample-ms', 50),
    scrapeInterval: num(v, 'scrape-interval', 0, false),
    recipients: num(v, 'recipients', 1),
    pushSenders: num(v, 'push-senders', 1),
    window: num(v, 'window', 1),
    lowRate: num(v, 'low-rate', 0.001, false),
    lowDuration: num(v, 'low-duration', 0, false),
    pushBurstMs: num(v, 'push-burst-ms', 0),
    apiClients: num(v, 'api-clients', 1),
    apiProtocol: apiProtocolOf(v['api-protocol']),
    ...(v['api-url'] === undefined ? {} : { apiUrl: String(v['api-url']) }),
    ...(v['api-key'] === undefined ? {} : { apiKey: String(v['api-key']) }),
    files: num(v, 'files', 1),
    fileMib: num(v, 'file-mib', 1),
    keyDevices: num(v, 'key-devices', 1),
    claimers: num(v, 'claimers', 1),
  };
  if (url !== undefined) o.url = url;
  if (v.secret !== undefined) o.secret = String(v.secret);
  if (v['metrics-url'] !== undefined) o.metricsUrl = String(v['metrics-url']);
  if (v.rate !== undefined) o.rate = num(v, 'rate', 0.001, false);
  if (v.out !== undefined) o.out = String(v.out);
  if (typeof v.attacks === 'string' && v.attacks !== 'all') o.attacks = v.attacks;
  // An attack is measured for a minute unless asked otherwise.
  const durationGiven = argv.some((a) => a === '--duration' || a.startsWith('--duration='));
  if (o.scenario === 'hostile' && !durationGiven) o.duration = 60;
  // Push throughput is measured over 20 s unless asked otherwise.
  if (o.scenario === 'push' && !durationGiven) o.duration = 20;
  if (o.scenario === 'push' && o.url !== undefined)
    throw new UsageError(
      'push spawns its own server (it passes it the push settings and the CA): drop --url',
    );
  if (o.scenario === 'webhooks' && o.url !== undefined)
    throw new UsageError(
      "webhooks spawns its own server (the webhook URL is the server's configuration, pointed at the bench's receiver): drop --url",
    );
  if (o.senders > o.members) throw new UsageError('--senders cannot exceed --members');
  if (o.users % 2 !== 0) throw new UsageError('--users must be even (users send in pairs)');
  return o;
}
