import { randomUUID } from 'node:crypto';
import {
  type DescMessage,
  fromJson,
  type JsonObject,
  type JsonValue,
  ScalarType,
  toJson,
} from '@bufbuild/protobuf';
import {
  createServerClient,
  type ServerApiProtocol,
  ServerApiService,
  type ServerClient,
} from '@parley/server-client';

export const API_USAGE = `usage: parley api <call> [--field value …] [--url URL] [--key KEY] [--protocol P]

Calls the server API (docs/server-api.md) and prints the response as JSON. <call> is a call's
name in kebab case (send-message, create-group, get-history, mint-token, …; \`send\` and \`token\`
for short); each field is a flag in kebab case: \`--as\` for as_user, lists comma-separated,
enums by their last word (\`--role admin\`, \`--last-seen nobody\`).

  parley api send --as alice --conv dm:alice:bob --body hi
  parley api create-group --as alice --name Team --members bob,carol
  parley api revoke-device --user bob --device phone

  --url URL        the server API (default $PARLEY_SERVER_API_URL, else http://127.0.0.1:8090)
  --key KEY        the API key (default $PARLEY_API_KEY)
  --protocol P     grpc (default), grpc-web or connect`;

const ALIASES: Record<string, string> = { send: 'send-message', token: 'mint-token' };

type Method = (typeof ServerApiService.methods)[number];

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replace(/_/g, '-');

/** `parley api …`: resolves 0 on success, 1 when the call failed, 2 on a usage error. */
export async function apiCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    console.log(API_USAGE);
    return name ? 0 : 2;
  }
  const method = ServerApiService.methods.find((m) => kebab(m.localName) === (ALIASES[name] ?? name));
  if (!method) {
    console.error(`unknown call "${name}"\n\n${API_USAGE}`);
    return 2;
  }
  let flags: Map<string, string>;
  let request: JsonObject;
  try {
    flags = parseFlags(rest);
    const url = take(flags, 'url') ?? env.PARLEY_SERVER_API_URL ?? 'http://127.0.0.1:8090';
    const apiKey = take(flags, 'key') ?? env.PARLEY_API_KEY;
    const protocol = (take(flags, 'protocol') ?? 'grpc') as ServerApiProtocol;
    if (!apiKey) throw new Error('an API key is needed: --key or PARLEY_API_KEY');
    if (!['grpc', 'grpc-web', 'connect'].includes(protocol))
      throw new Error(`unknown protocol "${protocol}"`);
    request = requestJson(method.input, flags);
    const client = createServerClient({ baseUrl: url, apiKey, protocol });
    const response = await call(client, method, request);
    console.log(JSON.stringify(response, null, 2));
    return 0;
  } catch (err) {
    console.error(`parley api ${name}: ${err instanceof Error ? err.message : String(err)}`);
    return err instanceof UsageError ? 2 : 1;
  }
}

class UsageError extends Error {}

function parseFlags(args: string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!;
    const value = args[i + 1];
    if (!flag.startsWith('--') || value === undefined)
      throw new UsageError(`expected --flag value, got "${flag}"`);
    flags.set(flag.slice(2), value);
    i++;
  }
  return flags;
}

function take(flags: Map<string, string>, name: string): string | undefined {
  const v = flags.get(name);
  flags.delete(name);
  return v;
}

/** The call's request in proto3 JSON, from flags named after its fields. */
function requestJson(input: DescMessage, flags: Map<string, string>): JsonObject {
  const json: JsonObject = {};
  if (flags.has('as')) flags.set('as-user', take(flags, 'as')!);
  for (const field of input.fields) {
    const value = take(flags, kebab(field.name));
    if (value === undefined) continue;
    json[field.jsonName] = fieldJson(field, value);
  }
  if (input.fields.some((f) => f.name === 'cmid') && json.cmid === undefined) json.cmid = randomUUID();
  if (flags.size > 0)
    throw new UsageError(`unknown field(s): ${[...flags.keys()].map((k) => `--${k}`).join(' ')}`);
  return json;
}

function fieldJson(field: DescMessage['fields'][number], value: string): JsonValue {
  if (field.fieldKind === 'list') return value.split(',').filter((v) => v !== '');
  if (field.fieldKind === 'enum') {
    const wanted = value.toUpperCase();
    const v = field.enum.values.find((e) => e.name === wanted || e.name.endsWith(`_${wanted}`));
    if (!v)
      throw new UsageError(
        `--${kebab(field.name)} must be one of ${field.enum.values.map((e) => e.name).join(', ')}`,
      );
    return v.name;
  }
  if (field.fieldKind === 'scalar' && field.scalar === ScalarType.BOOL)
    return ['true', 'on', 'yes'].includes(value);
  return value;
}

async function call(client: ServerClient, method: Method, json: JsonObject): Promise<JsonValue> {
  const request = fromJson(method.input, json);
  const invoke = client[method.localName as keyof ServerClient] as (r: unknown) => Promise<never>;
  const response = await invoke(request);
  return toJson(method.output, response, { useProtoFieldName: true });
}
