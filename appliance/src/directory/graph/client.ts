// A Microsoft Graph client for the directory: app-only token from
// @azure/identity (scope https://graph.microsoft.com/.default), the Graph SDK's
// own middleware chain with its RetryHandler configured for throttling (429,
// 503, 504 with Retry-After honoured), a bounded number of retries, a cap
// on the total time one refresh may spend waiting, and a timeout on each
// request (each attempt), so a request Graph never answers cannot hold a refresh.
import type { Client, Context, Middleware } from '@microsoft/microsoft-graph-client';
import type { TokenCredential } from '@azure/identity';

export const GRAPH_SCOPE = 'https://graph.microsoft.com/.default';
export const GRAPH_BASE_URL = 'https://graph.microsoft.com/';

export interface GraphClientOptions {
  credential: TokenCredential;
  /** Default https://graph.microsoft.com/ (a national cloud or a stand-in otherwise). */
  baseUrl?: string;
  /** Retries of one request on 429/503/504; default 5 (the SDK allows at most 10). */
  maxRetries?: number;
  /** Base delay in seconds when the answer has no Retry-After; default 2. */
  retryDelaySeconds?: number;
  /** Latest moment (epoch ms) a retry may still be waited for; beyond it the error is returned. */
  deadline?: () => number;
  /** Longest one request (one attempt, its body included) may take; default 60 s. */
  requestTimeoutSeconds?: number;
}

/**
 * Aborts a request (each attempt of it: it sits after the retry handler) that
 * has not been answered, body included, within `ms`. The SDK itself has no
 * timeout, and a hung connection would otherwise hold the refresh for ever.
 */
class RequestTimeoutHandler implements Middleware {
  private next?: Middleware;
  constructor(private readonly ms: number) {}
  async execute(context: Context): Promise<void> {
    const timeout = AbortSignal.timeout(this.ms); // its timer does not keep the process alive
    // Our requests carry no signal of their own; a retried attempt replaces the previous attempt's.
    context.options = { ...context.options, signal: timeout };
    try {
      await this.next!.execute(context);
    } catch (error) {
      if (timeout.aborted) throw new Error(`Microsoft Graph did not answer within ${this.ms / 1000} s`);
      throw error;
    }
  }
  setNext(next: Middleware): void {
    this.next = next;
  }
}

export function createGraphClient(options: GraphClientOptions): Client {
  // Loaded on first use: a node without a Graph directory never pays for the SDK's memory.
  const { AuthenticationHandler, Client, HTTPMessageHandler, RetryHandler, RetryHandlerOptions, TelemetryHandler } =
    require('@microsoft/microsoft-graph-client') as typeof import('@microsoft/microsoft-graph-client');
  const { TokenCredentialAuthenticationProvider } =
    require('@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials') as typeof import('@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials');
  const baseUrl = new URL(options.baseUrl ?? GRAPH_BASE_URL);
  const auth = new AuthenticationHandler(new TokenCredentialAuthenticationProvider(options.credential, { scopes: [GRAPH_SCOPE] }));
  const retry = new RetryHandler(
    new RetryHandlerOptions(options.retryDelaySeconds ?? 2, Math.min(options.maxRetries ?? 5, 10), (delay, _attempt, _request, _options, response) => {
      if (!options.deadline) return true;
      // The SDK passes its base delay; the wait it will actually take is Retry-After when present.
      const retryAfter = Number(response.headers.get('Retry-After'));
      const wait = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : delay;
      return Date.now() + wait * 1000 <= options.deadline();
    }),
  );
  const timeout = new RequestTimeoutHandler((options.requestTimeoutSeconds ?? 60) * 1000);
  const telemetry = new TelemetryHandler();
  const http = new HTTPMessageHandler();
  auth.setNext(retry);
  retry.setNext(timeout);
  timeout.setNext(telemetry);
  telemetry.setNext(http);
  const isGraph = baseUrl.hostname === 'graph.microsoft.com';
  return Client.initWithMiddleware({
    middleware: auth,
    baseUrl: baseUrl.toString(),
    defaultVersion: 'v1.0',
    // The SDK attaches the token only to Graph's own hosts unless told otherwise.
    ...(isGraph ? {} : { customHosts: new Set([baseUrl.hostname]) }),
  });
}
