import { expect } from 'chai';
import { createDirectorySnapshot } from '../../appliance/src/directory';
import { createGraphDirectorySource, USER_SELECT, type GraphDirectorySource } from '../../appliance/src/directory/graph';
import { retryWaitSeconds } from '../../appliance/src/directory/graph/client';
import { STANDARD_ATTRIBUTES } from '../../appliance/src/config';
import { createLogger, createMetrics, type Logger, type SignetMetrics } from '../../appliance/src/observability';
import { createAppCredential, createAzureCredential, createKeyVaultSecretProvider, type TokenCredential } from '../../appliance/src/secrets';
import { standinAppSecrets, startAzureStandin, trustTestCa, useStandinManagedIdentity, type AzureStandin } from '../support/azure-standin';
import { startGraphStandin, type GraphStandin } from '../support/graph-standin';

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const SALES = 'aaaaaaaa-0000-4000-8000-000000000001';
const EMEA = 'aaaaaaaa-0000-4000-8000-000000000002';

function person(n: number, extra: Record<string, unknown> = {}) {
  return {
    id: id(n),
    mail: `User${n}@Contoso.com`,
    proxyAddresses: [`SMTP:User${n}@Contoso.com`, `smtp:u${n}@contoso.co.uk`, `X500:/o=ExchangeLabs/cn=u${n}`],
    displayName: `User ${n}`,
    givenName: 'User',
    surname: String(n),
    jobTitle: 'Engineer',
    department: 'R&D',
    companyName: 'Contoso Ltd',
    mobilePhone: null,
    businessPhones: ['+44 20 7946 0000', '+44 20 7946 0001'],
    officeLocation: 'London',
    streetAddress: '1 Main St',
    city: 'London',
    state: null,
    postalCode: 'EC1A 1BB',
    country: 'United Kingdom',
    employeeId: `E-${n}`,
    faxNumber: '+44 20 7946 0099',
    onPremisesExtensionAttributes: { extensionAttribute1: `cost-${n}`, extensionAttribute2: null },
    userPrincipalName: `user${n}@contoso.onmicrosoft.com`, // not selected: must not reach the snapshot
    ...extra,
  };
}

/** A logger that keeps what it logs, parsed. */
function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { logger: createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } }), lines };
}

async function metric(metrics: SignetMetrics, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
  return m?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
}

describe('directory from Microsoft Graph (real Graph SDK client against a local stand-in)', () => {
  let azure: AzureStandin;
  let graph: GraphStandin;
  let credential: TokenCredential;
  let restore: Array<() => void>;
  let metrics: SignetMetrics;
  let source: GraphDirectorySource;

  before(async () => {
    azure = await startAzureStandin();
    graph = await startGraphStandin();
    restore = [trustTestCa(azure.caPem), useStandinManagedIdentity(azure)];
    credential = createAzureCredential({ kind: 'node', managedIdentityClientId: 'graph-reader' });
    graph.pageSize = 2; // five users → three pages
    for (let n = 1; n <= 5; n++) graph.upsertUser(person(n));
    graph.upsertUser({ id: id(9), mail: null, proxyAddresses: [], displayName: 'Meeting Room' }); // no address: not a sender
    graph.setGroup({ id: EMEA, displayName: 'EMEA', members: [id(3), id(4)] });
    graph.setGroup({ id: SALES, displayName: "Sales & Partners' Team", members: [id(1), EMEA] });
    metrics = createMetrics({ processMetrics: false });
    source = createGraphDirectorySource({
      credential,
      baseUrl: graph.baseUrl,
      groups: ["Sales & Partners' Team", EMEA],
      refreshSeconds: 0,
      retryDelaySeconds: 1,
      metrics,
    });
  });
  after(async () => {
    source.stop();
    for (const undo of restore.reverse()) undo();
    await graph.close();
    await azure.close();
  });

  it('loads every user with paging and $select, maps attributes, aliases and transitive groups', async () => {
    // before the first load the last sync reads 0 ("never"), so a node that never loads is alerted on
    expect(await metric(metrics, 'signet_directory_last_sync_timestamp_seconds', { source: 'graph' })).to.equal(0);
    await source.start();
    expect(source.status().lastError, source.status().lastError + JSON.stringify(graph.requests)).to.equal(undefined);
    const snapshot = source.current()!;
    expect(snapshot.size).to.equal(5);
    // the users delta query's first round is the full listing: no separate /users listing
    expect(graph.requests.some((r) => r.path === '/v1.0/users')).to.equal(false);
    const usersPages = graph.requests.filter((r) => r.path === '/v1.0/users/delta');
    expect(usersPages.length).to.equal(3);
    expect(decodeURIComponent(usersPages[0].query)).to.include('$select=id,mail,proxyAddresses,displayName');
    expect(usersPages.every((r) => r.clientId === 'graph-reader')).to.equal(true);
    // members 999 a page (Graph's default is 100)
    const members = graph.requests.filter((r) => r.path.includes('/transitiveMembers/'));
    expect(members.length).to.be.greaterThan(0);
    expect(members.every((r) => new URLSearchParams(r.query).get('$top') === '999')).to.equal(true);
    const u1 = snapshot.lookup('U1@contoso.CO.uk')!;
    expect(u1.mail).to.equal('user1@contoso.com');
    expect(u1.aliases).to.deep.equal(['u1@contoso.co.uk']);
    expect(u1.attributes).to.include({ displayName: 'User 1', jobTitle: 'Engineer', businessPhones: '+44 20 7946 0000, +44 20 7946 0001', extensionAttribute1: 'cost-1', country: 'United Kingdom', employeeId: 'E-1', faxNumber: '+44 20 7946 0099' });
    expect(u1.attributes.extensionAttribute2).to.equal(undefined);
    expect(u1.attributes.mobilePhone).to.equal(undefined);
    expect(u1.attributes).to.not.have.property('userPrincipalName');
    // Sales contains user 1 directly and users 3 and 4 through EMEA; the group was named by display name.
    expect(snapshot.lookup('user3@contoso.com')!.groups).to.include.members([SALES, "Sales & Partners' Team", EMEA, 'EMEA']);
    expect(u1.groups).to.include.members([SALES, "Sales & Partners' Team"]).and.not.include(EMEA);
    expect(snapshot.lookup('user2@contoso.com')!.groups).to.deep.equal([]);
    expect(graph.requests.some((r) => r.path === '/v1.0/groups' && decodeURIComponent(r.query).includes("displayName eq 'Sales & Partners'' Team'"))).to.equal(true);
    expect(await metric(metrics, 'signet_directory_users', { source: 'graph' })).to.equal(5);
    expect(await metric(metrics, 'signet_directory_syncs_total', { source: 'graph', result: 'ok' })).to.equal(1);
    expect(await metric(metrics, 'signet_directory_last_sync_timestamp_seconds', { source: 'graph' })).to.be.greaterThan(0);
  });

  it('selects every standard attribute templates are offered (extension attributes come in onPremisesExtensionAttributes)', () => {
    const missing = STANDARD_ATTRIBUTES.filter((name) => !/^extensionAttribute\d+$/.test(name) && !USER_SELECT.includes(name));
    expect(missing).to.deep.equal([]);
  });

  it('delta refresh picks up a changed job title, a new user and a removed user', async () => {
    graph.upsertUser({ ...person(2), jobTitle: 'Head of Engineering' });
    graph.upsertUser(person(6));
    graph.removeUser(id(5));
    const before = graph.requests.length;
    expect(await source.refresh()).to.equal('delta');
    const after = graph.requests.slice(before);
    expect(after.some((r) => r.path === '/v1.0/users')).to.equal(false);
    expect(after.filter((r) => r.path === '/v1.0/users/delta').every((r) => r.query.includes('deltatoken'))).to.equal(true);
    const snapshot = source.current()!;
    expect(snapshot.lookup('user2@contoso.com')!.attributes.jobTitle).to.equal('Head of Engineering');
    expect(snapshot.lookup('user5@contoso.com')).to.equal(undefined);
    expect(snapshot.lookup('user6@contoso.com')!.attributes.displayName).to.equal('User 6');
    expect(snapshot.size).to.equal(5);
  });

  it('per-user attributes from the config override Graph', () => {
    source.setOverrides(new Map([['u1@contoso.co.uk', { jobTitle: 'Chief Example Officer', pronouns: 'they/them' }]]));
    const u1 = source.current()!.lookup('user1@contoso.com')!;
    expect(u1.attributes).to.include({ jobTitle: 'Chief Example Officer', pronouns: 'they/them', department: 'R&D' });
    source.setOverrides(new Map());
  });

  it('honours 429 with Retry-After and then succeeds', async () => {
    graph.throttle(2, 1);
    const before = graph.requests.length;
    expect(await source.refresh()).to.equal('delta');
    const statuses = graph.requests.slice(before).map((r) => r.status);
    expect(statuses.slice(0, 3)).to.deep.equal([429, 429, 200]);
    expect(source.status().lastError).to.equal(undefined);
  });

  it('retries a 503 or 504 (Graph busy) and then succeeds', async () => {
    for (const status of [503, 504]) {
      graph.fail(1, status);
      const before = graph.requests.length;
      expect(await source.refresh(), source.status().lastError).to.equal('delta');
      expect(graph.requests.slice(before).map((r) => r.status).slice(0, 2)).to.deep.equal([status, 200]);
    }
  });

  it('a failed refresh keeps the last good snapshot and is counted; a throttle beyond the time cap gives up', async () => {
    const good = source.current()!;
    graph.upsertUser({ ...person(3), jobTitle: 'Changed while Graph fails' });
    graph.fail(1, 500);
    expect(await source.refresh()).to.equal('failed');
    expect(source.current()).to.equal(good);
    expect(source.status().lastError).to.match(/delta refresh from Microsoft Graph failed \(500/);
    expect(await metric(metrics, 'signet_directory_syncs_total', { source: 'graph', result: 'failed' })).to.equal(1);

    // Retry-After longer than the whole refresh may take: no waiting, the refresh fails at once.
    const cappedMetrics = createMetrics({ processMetrics: false });
    const capped = createGraphDirectorySource({ credential, baseUrl: graph.baseUrl, refreshSeconds: 0, maxRefreshSeconds: 5, metrics: cappedMetrics });
    // both results exist at 0 before the first refresh, so the first failure is an increase alerts can see
    expect(await metric(cappedMetrics, 'signet_directory_syncs_total', { source: 'graph', result: 'failed' })).to.equal(0);
    expect(await metric(cappedMetrics, 'signet_directory_syncs_total', { source: 'graph', result: 'ok' })).to.equal(0);
    graph.throttle(1, 3600);
    expect(await capped.refresh()).to.equal('failed');
    expect(capped.status().lastError).to.match(/429/);
    expect(await metric(cappedMetrics, 'signet_directory_syncs_total', { source: 'graph', result: 'failed' })).to.equal(1);
    expect(capped.current()).to.equal(undefined);
    // a node that never loaded shows a last sync of 0, not no series at all (the stale alert must see it)
    expect(await metric(cappedMetrics, 'signet_directory_last_sync_timestamp_seconds', { source: 'graph' })).to.equal(0);

    // The next refresh recovers and sees the change.
    expect(await source.refresh()).to.equal('delta');
    expect(source.current()!.lookup('user3@contoso.com')!.attributes.jobTitle).to.equal('Changed while Graph fails');
  });

  for (const [answer, department] of [
    [{ status: 400, code: 'syncStateNotFound' }, 'Sales'], // what Graph answers for an expired users delta token
    [{ status: 400, code: 'ResyncRequired' }, 'Marketing'], // the code compared case-insensitively
    [{ status: 410, code: 'generalException' }, 'Legal'], // 410 Gone whatever the code
  ] as const) {
    it(`starts over with a full load when the delta token has expired (${answer.status} ${answer.code})`, async () => {
      graph.expireDeltaTokens(answer);
      graph.upsertUser({ ...person(4), department });
      const before = graph.requests.length;
      expect(await source.refresh()).to.equal('full');
      expect(graph.requests[before]).to.include({ path: '/v1.0/users/delta', status: answer.status });
      expect(source.current()!.lookup('user4@contoso.com')!.attributes.department).to.equal(department);
      expect(source.current()!.lookup('user3@contoso.com')!.groups).to.include(EMEA);
      expect(source.status().lastError).to.equal(undefined);
      // and change tracking continues from the new round's link
      graph.upsertUser({ ...person(4), department: `${department} 2` });
      expect(await source.refresh()).to.equal('delta');
      expect(source.current()!.lookup('user4@contoso.com')!.attributes.department).to.equal(`${department} 2`);
    });
  }

  it('a throttle whose Retry-After is an HTTP date beyond the time cap gives up at once, as one in seconds does', async () => {
    const capped = createGraphDirectorySource({ credential, baseUrl: graph.baseUrl, refreshSeconds: 0, maxRefreshSeconds: 5 });
    graph.throttle(1, 3600, true); // the SDK would sleep its 180 s maximum before retrying
    const before = graph.requests.length;
    expect(await capped.refresh()).to.equal('failed');
    expect(capped.status().lastError).to.match(/429/);
    expect(graph.requests.slice(before).map((r) => r.status)).to.deep.equal([429]);
    // the estimate covers the SDK's own back-off when there is no Retry-After
    expect(retryWaitSeconds(null, 1, 2, 180)).to.equal(3);
    expect(retryWaitSeconds(null, 5, 2, 180)).to.equal(16 + 2 + 1);
    expect(retryWaitSeconds(null, 10, 2, 180)).to.equal(181);
    expect(retryWaitSeconds('7', 3, 2, 180)).to.equal(7);
  });

  it('a long listing that is still making progress may wait out a throttle after the time cap has passed since it began', async () => {
    // A large tenant's first load takes longer than maxRefreshSeconds; a 429 (or 503/504) late in it must not throw the pages read away.
    const slow = createGraphDirectorySource({ credential, baseUrl: graph.baseUrl, refreshSeconds: 0, maxRefreshSeconds: 2 });
    graph.pageSize = 1;
    graph.delayMs = 400;
    const before = graph.requests.length;
    try {
      const pagesNow = source.current()!.size + 1; // the users, and the room without an address
      graph.throttle(1, 1, false, pagesNow - 1); // the last page of the listing, about 2.4 s into it
      expect(await slow.refresh(), slow.status().lastError).to.equal('full');
    } finally {
      graph.pageSize = 2;
      graph.delayMs = 0;
      graph.throttle(0, 0);
    }
    expect(slow.status().lastError).to.equal(undefined);
    expect(graph.requests.slice(before).map((r) => r.status)).to.include(429);
    expect(slow.current()!.size).to.equal(source.current()!.size);
  });

  it('refuses a next link that leads back to a page already read, instead of paging on to the page cap', async () => {
    const looping = createGraphDirectorySource({ credential, baseUrl: graph.baseUrl, refreshSeconds: 0 });
    const before = graph.requests.length;
    graph.nextLinkLoop = true;
    try {
      expect(await looping.refresh()).to.equal('failed');
    } finally {
      graph.nextLinkLoop = false;
    }
    expect(looping.status().lastError).to.match(/next link it had given before/);
    expect(graph.requests.length - before).to.be.lessThan(5);
    expect(await looping.refresh()).to.equal('full');
  });

  it('applies a delta round only once it is read to the end: a reload of the groups meanwhile publishes none of it', async () => {
    for (const n of [1, 2, 3]) graph.upsertUser({ ...person(n), jobTitle: `Interrupted ${n}` }); // two pages of two
    const titles = () => [1, 2, 3].map((n) => source.current()!.lookup(`user${n}@contoso.com`)!.attributes.jobTitle);
    const old = titles();
    graph.fail(1, 500, 1); // the first page is answered, the second fails
    try {
      expect(await source.refresh()).to.equal('failed');
      expect(await source.setGroups([EMEA])).to.equal('groups');
      expect(titles()).to.deep.equal(old);
      expect(await source.refresh()).to.equal('delta');
      expect(titles()).to.deep.equal(['Interrupted 1', 'Interrupted 2', 'Interrupted 3']);
    } finally {
      for (const n of [1, 2, 3]) graph.upsertUser(person(n));
      await source.setGroups(["Sales & Partners' Team", EMEA]);
      await source.refresh();
    }
  });

  it('gives an address two users claim to the mailbox whose proxy addresses hold it, whatever order Graph lists them in', async () => {
    // user 30 has no mailbox but a mail attribute (say, synced from on-premises) naming the address of mailbox 31
    graph.upsertUser({ id: id(30), mail: 'Shared30@contoso.com', proxyAddresses: [], displayName: 'Stale account' });
    graph.upsertUser({ id: id(31), mail: 'shared30@contoso.com', proxyAddresses: ['SMTP:shared30@contoso.com', 'smtp:s31@contoso.com'], displayName: 'The mailbox' });
    try {
      expect(await source.refresh()).to.equal('delta');
      expect(source.current()!.lookup('shared30@contoso.com')!.attributes.displayName).to.equal('The mailbox');
      const fresh = createGraphDirectorySource({ credential, baseUrl: graph.baseUrl, refreshSeconds: 0 });
      expect(await fresh.refresh()).to.equal('full');
      expect(fresh.current()!.lookup('shared30@contoso.com')!.attributes.displayName).to.equal('The mailbox');
    } finally {
      graph.removeUser(id(30));
      graph.removeUser(id(31));
      await source.refresh();
    }
  });

  it('retries a failed first load soon (backing off), not a whole refresh interval later', async () => {
    const { logger, lines } = capturingLogger();
    const retrying = createGraphDirectorySource({ credential, baseUrl: graph.baseUrl, refreshSeconds: 3600, failedRetrySeconds: 0.2, logger });
    graph.fail(2, 500);
    try {
      await retrying.start();
      expect(retrying.current()).to.equal(undefined);
      for (let i = 0; i < 100 && !retrying.current(); i++) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(retrying.current()?.size).to.equal(source.current()!.size);
      expect(lines.filter((l) => l.event === 'directory_sync_failed')).to.have.length(2);
    } finally {
      retrying.stop();
      graph.fail(0, 500);
    }
  });

  it('an interval longer than a timer can hold does not make refreshes run back to back', async () => {
    const before = graph.requests.length;
    const slow = createGraphDirectorySource({ credential, baseUrl: graph.baseUrl, refreshSeconds: 60 * 86400 });
    try {
      await slow.start();
      await new Promise((resolve) => setTimeout(resolve, 300));
      // the first load only: a refresh after it would continue from the delta link
      expect(graph.requests.slice(before).filter((r) => r.query.includes('deltatoken'))).to.deep.equal([]);
    } finally {
      slow.stop();
    }
  });

  it('takes another 400 answer to a delta query as a failure, not as a reason to load everything again', async () => {
    graph.fail(1, 400);
    expect(await source.refresh()).to.equal('failed');
    expect(source.status().lastError).to.match(/delta refresh .* failed \(400 generalException/);
    expect(await source.refresh()).to.equal('delta');
  });

  it('drops users the first delta round lists as @removed, also after listing them', async () => {
    const fresh = createGraphDirectorySource({ credential, baseUrl: graph.baseUrl, refreshSeconds: 0 });
    graph.initialDeltaExtra = [{ id: id(1), '@removed': { reason: 'changed' } }, { id: id(42), '@removed': { reason: 'deleted' } }];
    try {
      expect(await fresh.refresh()).to.equal('full');
    } finally {
      graph.initialDeltaExtra = [];
    }
    expect(fresh.current()!.lookup('user1@contoso.com')).to.equal(undefined);
    expect(fresh.current()!.size).to.equal(source.current()!.size - 1);
    expect(fresh.current()!.lookup('user2@contoso.com')).to.not.equal(undefined);
  });

  it('takes the primary SMTP: proxy address as the mail address when mail is empty', async () => {
    graph.upsertUser({ id: id(20), mail: null, proxyAddresses: ['smtp:alias20@contoso.co.uk', 'SMTP:Primary20@Contoso.com', 'smtp:other20@contoso.com'], displayName: 'User 20' });
    try {
      expect(await source.refresh()).to.equal('delta');
      const user = source.current()!.lookup('alias20@contoso.co.uk')!;
      expect(user.mail).to.equal('primary20@contoso.com');
      expect(user.aliases).to.have.members(['alias20@contoso.co.uk', 'other20@contoso.com']);
    } finally {
      graph.removeUser(id(20));
      await source.refresh();
    }
  });

  it('skips a group a rule names by id that has been deleted (a warning), and still publishes user changes', async () => {
    const GONE = 'aaaaaaaa-0000-4000-8000-000000000009';
    graph.setGroup({ id: GONE, displayName: 'Project Falcon', members: [id(2)] });
    const { logger, lines } = capturingLogger();
    const withGone = createGraphDirectorySource({ credential, baseUrl: graph.baseUrl, refreshSeconds: 0, groups: [GONE, EMEA], logger });
    expect(await withGone.refresh()).to.equal('full');
    expect(withGone.current()!.lookup('user2@contoso.com')!.groups).to.include.members([GONE, 'Project Falcon']);

    graph.removeGroup(GONE);
    graph.upsertUser({ ...person(2), jobTitle: 'Hired after the group went' });
    expect(await withGone.refresh()).to.equal('delta');
    expect(withGone.status().lastError).to.equal(undefined);
    const u2 = withGone.current()!.lookup('user2@contoso.com')!;
    expect(u2.attributes.jobTitle).to.equal('Hired after the group went');
    expect(u2.groups).to.deep.equal([]);
    expect(withGone.current()!.lookup('user3@contoso.com')!.groups).to.include(EMEA);
    expect(lines.filter((l) => l.event === 'directory_group_not_found').map((l) => [l.level, l.group])).to.deep.equal([[40, GONE]]);

    // a node started after the deletion loads the directory all the same
    const later = createGraphDirectorySource({ credential, baseUrl: graph.baseUrl, refreshSeconds: 0, groups: [GONE] });
    expect(await later.refresh()).to.equal('full');
    expect(later.current()!.size).to.equal(source.current()!.size);
  });

  it('uses no group for a display name that several groups have (anyone may create one), and says which', async () => {
    const LEGAL = 'aaaaaaaa-0000-4000-8000-000000000010';
    const IMPOSTOR = 'aaaaaaaa-0000-4000-8000-000000000011';
    graph.setGroup({ id: LEGAL, displayName: 'Legal Disclaimer Exempt', members: [id(1)] });
    graph.setGroup({ id: IMPOSTOR, displayName: 'legal disclaimer exempt', members: [id(3)] }); // made by user 3
    try {
      const { logger, lines } = capturingLogger();
      const byName = createGraphDirectorySource({ credential, baseUrl: graph.baseUrl, refreshSeconds: 0, groups: ['Legal Disclaimer Exempt', EMEA], logger });
      expect(await byName.refresh()).to.equal('full');
      const snapshot = byName.current()!;
      expect(snapshot.lookup('user1@contoso.com')!.groups).to.deep.equal([]);
      expect(snapshot.lookup('user3@contoso.com')!.groups).to.have.members([EMEA, 'EMEA']);
      const warning = lines.find((l) => l.event === 'directory_group_ambiguous')!;
      expect(warning).to.include({ level: 40, group: 'Legal Disclaimer Exempt' });
      expect(warning.ids).to.have.members([LEGAL, IMPOSTOR]);
      expect(JSON.stringify(warning)).to.not.match(/00000000-0000-4000-8000|user\d/); // no member data

      // named by id the group is unambiguous; its (shared) name labels nobody
      const byId = createGraphDirectorySource({ credential, baseUrl: graph.baseUrl, refreshSeconds: 0, groups: [LEGAL, 'Legal Disclaimer Exempt'] });
      expect(await byId.refresh()).to.equal('full');
      expect(byId.current()!.lookup('user1@contoso.com')!.groups).to.deep.equal([LEGAL]);
      expect(byId.current()!.lookup('user3@contoso.com')!.groups).to.deep.equal([]);
    } finally {
      graph.removeGroup(LEGAL);
      graph.removeGroup(IMPOSTOR);
    }
  });

  it('gives up on a request Graph never answers: the refresh fails, keeps the snapshot, and lets the next one run', async () => {
    const timed = createGraphDirectorySource({ credential, baseUrl: graph.baseUrl, refreshSeconds: 0, requestTimeoutSeconds: 1, groups: [EMEA] });
    expect(await timed.refresh()).to.equal('full');
    const good = timed.current();
    graph.hang(1, '/v1.0/users/delta');
    const started = Date.now();
    const refreshing = timed.refresh();
    const regrouping = timed.setGroups([SALES]); // waits for the refresh
    expect(await refreshing).to.equal('failed');
    expect(Date.now() - started).to.be.lessThan(5000);
    expect(timed.status().lastError).to.match(/did not answer within 1 s/);
    expect(timed.current()).to.equal(good);
    expect(await regrouping).to.equal('groups');
    expect(timed.current()!.lookup('user1@contoso.com')!.groups).to.include(SALES);
    expect(await timed.refresh()).to.equal('delta');
  });

  it('loads the memberships of the groups a new configuration names at once, without listing the users again', async () => {
    const FINANCE = 'aaaaaaaa-0000-4000-8000-000000000003';
    graph.setGroup({ id: FINANCE, displayName: 'Finance', members: [id(2)] });
    try {
      // the same groups in another order: nothing to do, nothing asked of Graph
      let before = graph.requests.length;
      expect(await source.setGroups([EMEA, "Sales & Partners' Team", EMEA])).to.equal('unchanged');
      expect(graph.requests.length).to.equal(before);
      expect(source.current()!.lookup('user2@contoso.com')!.groups).to.deep.equal([]);

      before = graph.requests.length;
      expect(await source.setGroups(["Sales & Partners' Team", EMEA, 'Finance'])).to.equal('groups');
      const asked = graph.requests.slice(before).map((r) => r.path);
      expect(asked.some((p) => p.startsWith('/v1.0/users'))).to.equal(false);
      expect(asked).to.include(`/v1.0/groups/${FINANCE}/transitiveMembers/microsoft.graph.user`);
      expect(source.current()!.lookup('user2@contoso.com')!.groups).to.include.members([FINANCE, 'Finance']);
      expect(source.current()!.lookup('user1@contoso.com')!.groups).to.include(SALES);

      // a group the rules no longer name is dropped; a refresh keeps what the configuration names now
      expect(await source.setGroups(['Finance'])).to.equal('groups');
      expect(source.current()!.lookup('user1@contoso.com')!.groups).to.deep.equal([]);
      expect(await source.refresh()).to.equal('delta');
      expect(source.current()!.lookup('user2@contoso.com')!.groups).to.include('Finance');
      expect(source.current()!.lookup('user3@contoso.com')!.groups).to.deep.equal([]);

      // while a refresh runs, the reload waits for it and then reads the new groups
      const refreshing = source.refresh();
      const reloading = source.setGroups([EMEA]);
      expect(await refreshing).to.equal('delta');
      expect(await reloading).to.equal('groups');
      expect(source.current()!.lookup('user3@contoso.com')!.groups).to.include(EMEA);
      expect(source.current()!.lookup('user2@contoso.com')!.groups).to.deep.equal([]);

      // a failed reload keeps the snapshot as it was and says why
      graph.fail(1, 500);
      const kept = source.current();
      expect(await source.setGroups(['Finance'])).to.equal('failed');
      expect(source.current()).to.equal(kept);
      expect(source.status().lastError).to.match(/configuration's groups .* failed \(500/);

      // a source that has not loaded yet does its first full load with the new groups
      const fresh = createGraphDirectorySource({ credential, baseUrl: graph.baseUrl, refreshSeconds: 0 });
      expect(await fresh.setGroups(['Finance'])).to.equal('full');
      expect(fresh.current()!.lookup('user2@contoso.com')!.groups).to.include('Finance');
    } finally {
      await source.setGroups(["Sales & Partners' Team", EMEA]); // as the later tests expect
    }
  });

  it('can authenticate as a Graph app whose client secret is a Key Vault secret read with the node identity', async () => {
    standinAppSecrets.set('graph-app-1', 'app-secret-value');
    azure.setSecret('graph-client-secret', 'app-secret-value\n');
    // Loopback vault: see test/secrets/azure-key-vault.test.ts for why challenge verification is off here.
    const secrets = createKeyVaultSecretProvider(azure.vaultUrl, { credential, clientOptions: { disableChallengeResourceVerification: true } });
    const appCredential = await createAppCredential({ tenantId: 'contoso-tenant', clientId: 'graph-app-1', secrets, secretName: 'graph-client-secret', authorityHost: azure.identityUrl });
    const appSource = createGraphDirectorySource({ credential: appCredential, baseUrl: graph.baseUrl, refreshSeconds: 0 });
    const before = graph.requests.length;
    expect(await appSource.refresh()).to.equal('full');
    expect(appSource.current()!.size).to.equal(source.current()!.size);
    expect(graph.requests.slice(before).every((r) => r.clientId === 'graph-app-1')).to.equal(true);
    standinAppSecrets.set('graph-app-1', 'rotated');
    const stale = await createAppCredential({ tenantId: 'contoso-tenant', clientId: 'graph-app-1', secrets, secretName: 'graph-client-secret', authorityHost: azure.identityUrl });
    const refused = createGraphDirectorySource({ credential: stale, baseUrl: graph.baseUrl, refreshSeconds: 0 });
    expect(await refused.refresh()).to.equal('failed');
    expect(refused.status().lastError).to.match(/AADSTS7000215|invalid_client|Invalid client secret/);
  });

  it('produces snapshots the local directory code can also build (same shape)', () => {
    const copy = createDirectorySnapshot(source.current()!.users());
    expect(copy.size).to.equal(source.current()!.size);
  });
});
