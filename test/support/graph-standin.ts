// A local stand-in for the parts of Microsoft Graph v1.0 the directory uses,
// over HTTPS on 127.0.0.1 (test CA and tokens shared with the Azure stand-in),
// so the real @microsoft/microsoft-graph-client runs its own request code:
//   GET /v1.0/users/delta?$select                 paged ($top ignored, as Graph does), ends with @odata.deltaLink;
//       …/users/delta?$deltatoken=N               changes since N (@removed for deleted users); an expired
//       token answers as Graph does: 400 syncStateNotFound (or, on demand, 410)
//   GET /v1.0/groups?$filter=displayName eq '…'   (&$select; the name compared case-insensitively, as Graph does)
//   GET /v1.0/groups/{id}?$select=id,displayName
//   GET /v1.0/groups/{id}/transitiveMembers/microsoft.graph.user?$select=id&$count=true(&$top)   paged, nested
//       groups expanded; an OData cast is an advanced query, so `ConsistencyLevel: eventual` is required
//   GET /v1.0/users/{id}/photos/{size}/$value     the photo's bytes (image/jpeg, as Graph says whatever they are),
//       404 ImageNotFound without one or when the size asked for is larger than the photo; on demand a user's
//       photo fails with a status (429 with Retry-After) or comes without a Content-Length, as long as asked
//       (streamPhoto)
//   GET /v1.0/users/{id}/photo                     the largest photo's metadata (id "64X64", width, height)
//   GET /v1.0/users/{id}/photo/$value              the largest photo's bytes
// Requests need a bearer token issued for https://graph.microsoft.com. On
// demand it answers 429 with Retry-After in seconds or as a date (throttling,
// at once or a few requests later), fails with a status (likewise), never
// answers (a hung request), answers slowly, or gives next links that lead back
// to the same page.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { GRAPH_RESOURCE, standinIdentity } from './azure-standin';

export interface StandinUser {
  id: string;
  mail: string | null;
  [property: string]: unknown;
}

export interface StandinGroup {
  id: string;
  displayName: string;
  /** User ids and group ids (nested groups). */
  members: string[];
}

export interface GraphStandin {
  /** Base URL to give the Graph client: https://127.0.0.1:PORT/ */
  readonly baseUrl: string;
  /** Page size for every paged answer (small in tests to force paging); a smaller $top wins where Graph takes it. */
  pageSize: number;
  /** Entries appended to the first round of the users delta query (Graph may list @removed users there). */
  initialDeltaExtra: Array<Record<string, unknown>>;
  readonly requests: Array<{ method: string; path: string; query: string; clientId?: string; status: number }>;
  upsertUser(user: StandinUser): void;
  removeUser(id: string): void;
  setGroup(group: StandinGroup): void;
  removeGroup(id: string): void;
  /** The next `count` requests, after `after` more have been answered, get 429 with `Retry-After: seconds` (as an HTTP date that far ahead when `asDate`). */
  throttle(count: number, retryAfterSeconds: number, asDate?: boolean, after?: number): void;
  /** Milliseconds every answer waits before it is sent (a slow, large listing). */
  delayMs: number;
  /** The next `count` requests, after `after` more have been answered, fail with `status`. */
  fail(count: number, status: number, after?: number): void;
  /** A misbehaving server: every paged answer's next link is the request's own URL. */
  nextLinkLoop: boolean;
  /** The next `count` requests to `path` (e.g. /v1.0/users/delta) get no answer until the stand-in closes. */
  hang(count: number, path: string): void;
  /**
   * A user's photo: bytes, or none (404, the default), as large as `side` pixels (default 648): a size
   * larger than that is not found. Not a change the users delta query shows.
   */
  setPhoto(id: string, bytes: Buffer | undefined, side?: number): void;
  /** The next `count` requests for `id`'s photo fail with `status` (429: with `Retry-After: retryAfterSeconds`, default 1). */
  failPhoto(id: string, status: number, count?: number, retryAfterSeconds?: number): void;
  /**
   * `id`'s photo is answered without a Content-Length: a PNG signature, then zeros, `bytes` in all,
   * written 16 KB at a time while the client reads (a client that stops reading ends it).
   */
  streamPhoto(id: string, bytes: number): void;
  /** How many bytes of streamed photos the stand-in could write before each client stopped or it ended. */
  readonly streamedPhotoBytes: number[];
  /** Milliseconds a photo answer waits (so that requests overlap). */
  photoDelayMs: number;
  /** Photo requests being answered now, and the most there were at once (reset it to 0 to measure afresh). */
  readonly photosInFlight: number;
  maxPhotosInFlight: number;
  /**
   * Make delta links issued so far expire. Graph answers an expired directory delta token with 400
   * and the code syncStateNotFound (the default here); other resources, or a resync, use 410 Gone.
   */
  expireDeltaTokens(answer?: { status: number; code: string }): void;
  close(): Promise<void>;
}

export async function startGraphStandin(): Promise<GraphStandin> {
  const identity = await standinIdentity();
  const cert = await identity.ca.issueServer();
  const users = new Map<string, StandinUser>();
  const changed = new Map<string, number>(); // id → sequence of last change
  const removed = new Map<string, number>(); // id → sequence of removal
  const groups = new Map<string, StandinGroup>();
  const requests: GraphStandin['requests'] = [];
  const hung: ServerResponse[] = [];
  let sequence = 0;
  let oldestValidToken = 0;
  let expiredAnswer = { status: 400, code: 'syncStateNotFound' };
  let hanging = { count: 0, path: '' };
  let throttled = { count: 0, seconds: 0, asDate: false, after: 0 };
  let failing = { count: 0, status: 500, after: 0 };
  let baseUrl = '';
  const photos = new Map<string, Buffer>();
  const photoSides = new Map<string, number>();
  const photoFailures = new Map<string, Array<{ status: number; retryAfterSeconds: number }>>();
  const streamedPhotos = new Map<string, number>();
  const streamedPhotoBytes: number[] = [];
  let photosInFlight = 0;
  const entries = new WeakMap<ServerResponse, GraphStandin['requests'][number]>();

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json;odata.metadata=minimal', 'content-length': Buffer.byteLength(text), 'request-id': String(Math.random()).slice(2), ...headers });
    res.end(text);
    entries.get(res)!.status = status; // the request's own entry: answers may overlap (photos are asked for concurrently)
  };
  const error = (res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}) =>
    send(res, status, { error: { code, message, innerError: { date: new Date().toISOString() } } }, headers);

  const select = (user: StandinUser, fields: string[] | undefined) => {
    if (!fields) return { ...user };
    const out: Record<string, unknown> = { id: user.id };
    for (const field of fields) out[field] = user[field] ?? null;
    return out;
  };

  function page<T>(res: ServerResponse, items: T[], url: URL, extra: Record<string, unknown> = {}, finalLink?: Record<string, string>, topSupported = true): void {
    const skip = Number(url.searchParams.get('$skiptoken') ?? 0);
    const top = Math.min((topSupported && Number(url.searchParams.get('$top') ?? 100)) || 100, graph.pageSize);
    const slice = items.slice(skip, skip + top);
    const body: Record<string, unknown> = { '@odata.context': `${baseUrl}v1.0/$metadata`, ...extra, value: slice };
    if (graph.nextLinkLoop) {
      body['@odata.nextLink'] = url.toString();
    } else if (skip + top < items.length) {
      const next = new URL(url);
      next.searchParams.set('$skiptoken', String(skip + top));
      body['@odata.nextLink'] = next.toString();
    } else if (finalLink) {
      Object.assign(body, finalLink);
    }
    send(res, 200, body);
  }

  function transitiveUsers(groupId: string, seen = new Set<string>()): string[] {
    if (seen.has(groupId)) return [];
    seen.add(groupId);
    const out = new Set<string>();
    for (const member of groups.get(groupId)?.members ?? []) {
      if (groups.has(member)) for (const id of transitiveUsers(member, seen)) out.add(id);
      else if (users.has(member)) out.add(member);
    }
    return [...out];
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', baseUrl);
    const entry: GraphStandin['requests'][number] = { method: req.method ?? '', path: url.pathname, query: url.search, status: 0 };
    requests.push(entry);
    entries.set(res, entry);
    const clientId = identity.verify(req.headers.authorization, GRAPH_RESOURCE);
    entry.clientId = clientId;
    if (!clientId) return error(res, 401, 'InvalidAuthenticationToken', 'Access token is empty or invalid.');
    if (throttled.count > 0 && throttled.after > 0) throttled.after--;
    else if (throttled.count > 0) {
      throttled.count--;
      const retryAfter = throttled.asDate ? new Date(Date.now() + throttled.seconds * 1000).toUTCString() : String(throttled.seconds);
      return error(res, 429, 'TooManyRequests', 'Too many requests.', { 'retry-after': retryAfter });
    }
    if (failing.count > 0 && failing.after > 0) failing.after--;
    else if (failing.count > 0) {
      failing.count--;
      return error(res, failing.status, 'generalException', 'The stand-in was told to fail.');
    }
    if (hanging.count > 0 && url.pathname === hanging.path) {
      hanging.count--;
      return void hung.push(res); // never answered (ended when the stand-in closes)
    }
    if (req.method !== 'GET') return error(res, 405, 'Request_BadRequest', 'read-only stand-in');
    const fields = url.searchParams.get('$select')?.split(',');
    const path = decodeURIComponent(url.pathname);
    let m: RegExpExecArray | null;
    if (path === '/v1.0/users/delta') {
      const token = url.searchParams.get('$deltatoken');
      const deltaLink = () => {
        const link = new URL(`${baseUrl}v1.0/users/delta`);
        if (fields) link.searchParams.set('$select', fields.join(','));
        link.searchParams.set('$deltatoken', String(sequence));
        return { '@odata.deltaLink': link.toString() };
      };
      if (token === null) return page(res, [...[...users.values()].map((u) => select(u, fields)), ...graph.initialDeltaExtra], url, {}, deltaLink(), false);
      const since = Number(token);
      if (!(since >= oldestValidToken)) {
        return error(res, expiredAnswer.status, expiredAnswer.code, 'The sync state generation is not found. The delta token is expired and data must be synchronized again.');
      }
      const changes: unknown[] = [];
      for (const [id, at] of changed) if (at > since && users.has(id)) changes.push(select(users.get(id)!, fields));
      for (const [id, at] of removed) if (at > since) changes.push({ id, '@removed': { reason: 'deleted' } });
      // The token in the link is the sequence now; paging of a delta round keeps the original `since`.
      return page(res, changes, url, {}, deltaLink(), false);
    }
    if (path === '/v1.0/groups') {
      const filter = /^displayName eq '((?:[^']|'')*)'$/.exec(url.searchParams.get('$filter') ?? '');
      if (!filter) return error(res, 400, 'Request_UnsupportedQuery', 'only $filter=displayName eq \'…\' is supported here');
      const name = filter[1].replace(/''/g, "'").toLowerCase();
      return page(res, [...groups.values()].filter((g) => g.displayName.toLowerCase() === name).map((g) => ({ id: g.id, displayName: g.displayName })), url);
    }
    if ((m = /^\/v1\.0\/groups\/([^/]+)$/.exec(path))) {
      const group = groups.get(m[1]);
      if (!group) return error(res, 404, 'Request_ResourceNotFound', `Resource '${m[1]}' does not exist.`);
      return send(res, 200, { '@odata.context': `${baseUrl}v1.0/$metadata#groups(id,displayName)/$entity`, id: group.id, displayName: group.displayName });
    }
    if ((m = /^\/v1\.0\/groups\/([^/]+)\/transitiveMembers\/microsoft\.graph\.user$/.exec(path))) {
      if (!groups.has(m[1])) return error(res, 404, 'Request_ResourceNotFound', `Resource '${m[1]}' does not exist.`);
      // Filtering members by OData type is an advanced query (documented for v1.0): header and $count required.
      if (req.headers.consistencylevel !== 'eventual' || url.searchParams.get('$count') !== 'true') {
        return error(res, 400, 'Request_UnsupportedQuery', 'The OData cast requires ConsistencyLevel: eventual and $count=true.');
      }
      const members = transitiveUsers(m[1]).map((id) => ({ '@odata.type': '#microsoft.graph.user', id }));
      return page(res, members, url, { '@odata.count': members.length });
    }
    if ((m = /^\/v1\.0\/users\/([^/]+)\/(?:photos\/(\d+)x\d+|photo)(\/\$value)?$/.exec(path)) && (m[3] || !m[2])) {
      const id = m[1];
      const asked = m[2] ? Number(m[2]) : 0; // 0: the largest there is
      const metadata = !m[3];
      photosInFlight++;
      graph.maxPhotosInFlight = Math.max(graph.maxPhotosInFlight, photosInFlight);
      const answer = () => {
        photosInFlight--;
        const failure = photoFailures.get(id)?.shift();
        if (failure) {
          return error(res, failure.status, failure.status === 429 ? 'TooManyRequests' : 'generalException', 'The stand-in was told to fail this photo.', failure.status === 429 ? { 'retry-after': String(failure.retryAfterSeconds) } : {});
        }
        if (!users.has(id)) return error(res, 404, 'Request_ResourceNotFound', `Resource '${id}' does not exist.`);
        const streamed = streamedPhotos.get(id);
        if (streamed !== undefined) return streamPhoto(res, streamed, entry);
        const bytes = photos.get(id);
        const side = photoSides.get(id) ?? 648;
        if (!bytes || asked > side) return error(res, 404, 'ImageNotFound', 'Exception of type \'Microsoft.Fast.Profile.Core.Exception.ImageNotFoundException\' was thrown.');
        if (metadata) {
          return send(res, 200, { '@odata.context': `${baseUrl}v1.0/$metadata#users('${id}')/photo/$entity`, '@odata.mediaContentType': 'image/jpeg', id: `${side}X${side}`, height: side, width: side });
        }
        res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': bytes.length, 'request-id': String(Math.random()).slice(2) });
        res.end(bytes);
        entry.status = 200;
      };
      if (graph.photoDelayMs > 0) setTimeout(answer, graph.photoDelayMs);
      else answer();
      return;
    }
    return error(res, 400, 'BadRequest', `Unsupported request ${path}`);
  }

  /** Writes a long photo in chunks, as fast as the client takes them, until it is written or the client has gone. */
  function streamPhoto(res: ServerResponse, total: number, entry: { status?: number }): void {
    res.writeHead(200, { 'content-type': 'image/jpeg' }); // chunked: no length said in advance
    entry.status = 200;
    const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const chunk = Buffer.alloc(16 * 1024);
    let sent = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      streamedPhotoBytes.push(sent);
    };
    res.on('close', finish);
    const write = (): void => {
      while (sent < total && !res.destroyed) {
        const piece = sent === 0 ? Buffer.concat([signature, chunk]).subarray(0, Math.min(total, chunk.length)) : chunk.subarray(0, Math.min(chunk.length, total - sent));
        sent += piece.length;
        if (!res.write(piece)) {
          res.once('drain', write);
          return;
        }
      }
      if (sent >= total) res.end(finish);
    };
    write();
  }

  const server = createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    if (graph.delayMs > 0) setTimeout(() => handle(req, res), graph.delayMs);
    else handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  const graph: GraphStandin = {
    baseUrl,
    pageSize: 100,
    delayMs: 0,
    initialDeltaExtra: [],
    nextLinkLoop: false,
    requests,
    upsertUser(user) {
      users.set(user.id, { ...users.get(user.id), ...user });
      changed.set(user.id, ++sequence);
      removed.delete(user.id);
    },
    removeUser(id) {
      users.delete(id);
      changed.delete(id);
      removed.set(id, ++sequence);
    },
    setGroup: (group) => void groups.set(group.id, group),
    removeGroup: (id) => void groups.delete(id),
    throttle(count, seconds, asDate = false, after = 0) {
      throttled = { count, seconds, asDate, after };
    },
    fail(count, status, after = 0) {
      failing = { count, status, after };
    },
    hang(count, path) {
      hanging = { count, path };
    },
    photoDelayMs: 0,
    get photosInFlight() {
      return photosInFlight;
    },
    maxPhotosInFlight: 0,
    setPhoto(id, bytes, side = 648) {
      if (bytes) photos.set(id, bytes);
      else photos.delete(id);
      photoSides.set(id, side);
    },
    streamPhoto(id, bytes) {
      streamedPhotos.set(id, bytes);
    },
    streamedPhotoBytes,
    failPhoto(id, status, count = 1, retryAfterSeconds = 1) {
      photoFailures.set(id, [...(photoFailures.get(id) ?? []), ...Array.from({ length: count }, () => ({ status, retryAfterSeconds }))]);
    },
    expireDeltaTokens(answer = { status: 400, code: 'syncStateNotFound' }) {
      expiredAnswer = answer;
      oldestValidToken = sequence + 1;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hung.splice(0)) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return graph;
}
