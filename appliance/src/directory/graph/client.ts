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

/**
 * Where a tenant's directory lives (Microsoft's "national cloud deployments" of Graph): the Graph
 * root, its token scope (a scope names the cloud's own Graph host) and the Entra ID sign-in host.
 * GCC (moderate) tenants are in the global cloud; GCC High is `usgov`, DoD `usgov-dod`.
 */
export const GRAPH_CLOUDS = {
  global: { graph: GRAPH_BASE_URL, scope: GRAPH_SCOPE, login: 'https://login.microsoftonline.com' },
  usgov: { graph: 'https://graph.microsoft.us/', scope: 'https://graph.microsoft.us/.default', login: 'https://login.microsoftonline.us' },
  'usgov-dod': { graph: 'https://dod-graph.microsoft.us/', scope: 'https://dod-graph.microsoft.us/.default', login: 'https://login.microsoftonline.us' },
  china: { graph: 'https://microsoftgraph.chinacloudapi.cn/', scope: 'https://microsoftgraph.chinacloudapi.cn/.default', login: 'https://login.chinacloudapi.cn' },
} as const;
export type GraphCloud = keyof typeof GRAPH_CLOUDS;
export const GRAPH_CLOUD_NAMES = Object.keys(GRAPH_CLOUDS) as GraphCloud[];

/**
 * A Graph or sign-in URL of another cloud than `cloud` (it would sign in at one cloud and read another,
 * or ask one cloud's Graph for another's token): the clouds it belongs to, else undefined. Hosts no
 * cloud has (a stand-in, a proxy) are not judged.
 */
export function otherCloudOf(url: string, cloud: GraphCloud): GraphCloud[] | undefined {
  let host: string;
  try {
    host = new URL(url).hostname.toLowerCase();
  } catch {
    return undefined;
  }
  const owners = GRAPH_CLOUD_NAMES.filter((name) => [GRAPH_CLOUDS[name].graph, GRAPH_CLOUDS[name].login].some((u) => new URL(u).hostname === host));
  return owners.length > 0 && !owners.includes(cloud) ? owners : undefined;
}

export interface GraphClientOptions {
  credential: TokenCredential;
  /** Default https://graph.microsoft.com/ (a national cloud or a stand-in otherwise). */
  baseUrl?: string;
  /** Token scope; default https://graph.microsoft.com/.default (a national cloud's names its own Graph host). */
  scope?: string;
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

/**
 * The longest the SDK's RetryHandler sleeps before retry number `attempt` (what its
 * getDelay computes, its up to one second of randomness included): Retry-After in
 * seconds or as an HTTP date, else its exponential back-off; at most `maxDelay`.
 */
export function retryWaitSeconds(retryAfter: string | null, attempt: number, delay: number, maxDelay: number): number {
  let wait: number;
  if (retryAfter !== null) {
    const seconds = Number(retryAfter);
    wait = Number.isNaN(seconds) ? (new Date(retryAfter).getTime() - Date.now()) / 1000 : seconds;
    if (Number.isNaN(wait)) wait = 0; // an unreadable date: the SDK does not wait
  } else {
    wait = (attempt >= 2 ? Math.round((2 ** attempt - 1) / 2) : 0) + delay + 1;
  }
  return Math.min(wait, maxDelay + 1);
}

export function createGraphClient(options: GraphClientOptions): Client {
  // Loaded on first use: a node without a Graph directory never pays for the SDK's memory.
  const { AuthenticationHandler, Client, HTTPMessageHandler, RetryHandler, RetryHandlerOptions, TelemetryHandler } =
    require('@microsoft/microsoft-graph-client') as typeof import('@microsoft/microsoft-graph-client');
  const { TokenCredentialAuthenticationProvider } =
    require('@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials') as typeof import('@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials');
  const baseUrl = new URL(options.baseUrl ?? GRAPH_BASE_URL);
  const auth = new AuthenticationHandler(new TokenCredentialAuthenticationProvider(options.credential, { scopes: [options.scope ?? GRAPH_SCOPE] }));
  const retryOptions: InstanceType<typeof RetryHandlerOptions> = new RetryHandlerOptions(
    options.retryDelaySeconds ?? 2,
    Math.min(options.maxRetries ?? 5, 10),
    (delay, attempt, _request, _options, response) => {
      if (!options.deadline) return true;
      const wait = retryWaitSeconds(response.headers.get('Retry-After'), attempt + 1, delay, retryOptions.getMaxDelay());
      return Date.now() + wait * 1000 <= options.deadline();
    },
  );
  const retry = new RetryHandler(retryOptions);
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
