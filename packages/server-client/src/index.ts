/**
 * Parley's server API for app backends: the generated schema (`ServerApiService` and its
 * messages) and a client over any of the three protocols the server answers.
 * @module
 */
import { type Client, createClient, type Interceptor, type Transport } from '@connectrpc/connect';
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from '@connectrpc/connect-node';
import { ServerApiService } from './gen/parley/server/v1/server_api_pb.js';

export * from './gen/parley/server/v1/server_api_pb.js';

/** The wire protocols the server API answers. */
export type ServerApiProtocol = 'grpc' | 'grpc-web' | 'connect';

export interface ServerClientOptions {
  /** The server API listener, e.g. `http://127.0.0.1:8090`. */
  baseUrl: string;
  /** An API key the server knows. */
  apiKey: string;
  /** Default `grpc` (HTTP/2); `connect` speaks JSON over HTTP/1.1. */
  protocol?: ServerApiProtocol;
  /** Milliseconds before a call is abandoned (`deadline_exceeded`); default 10 s. */
  timeoutMs?: number;
  /** CA certificates (PEM) to trust for an `https://` baseUrl, besides the system's. */
  ca?: string | Buffer;
}

export type ServerClient = Client<typeof ServerApiService>;

/** A client of the server API: one method per call, each a promise of the call's response. */
export function createServerClient(o: ServerClientOptions): ServerClient {
  return createClient(ServerApiService, transportFor(o));
}

function transportFor(o: ServerClientOptions): Transport {
  const bearer: Interceptor = (next) => (req) => {
    req.header.set('authorization', `Bearer ${o.apiKey}`);
    return next(req);
  };
  const common = {
    baseUrl: o.baseUrl,
    interceptors: [bearer],
    defaultTimeoutMs: o.timeoutMs ?? 10_000,
    ...(o.ca === undefined ? {} : { nodeOptions: { ca: o.ca } }),
  };
  switch (o.protocol ?? 'grpc') {
    case 'grpc':
      return createGrpcTransport(common);
    case 'grpc-web':
      return createGrpcWebTransport({ ...common, httpVersion: '1.1' });
    case 'connect':
      return createConnectTransport({ ...common, httpVersion: '1.1' });
  }
}
