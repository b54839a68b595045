// An in-memory directory: users indexed by every address they own, with their
// transitive group memberships. Built the same way whatever the source (the
// local directory file, Microsoft Graph), and never written anywhere.
import { asciiDomain } from '../rules';
import type { DirectorySnapshot, DirectoryUser } from './types';

/**
 * Lower-cases an address, drops a proxyAddresses-style `smtp:` prefix and
 * writes an internationalized domain in its ASCII (punycode) form, the form
 * the relay looks senders up with, whichever form the directory holds.
 */
export function normalizeAddress(address: string): string {
  const lower = address.trim().replace(/^smtp:/i, '').toLowerCase();
  const at = lower.lastIndexOf('@');
  return at < 0 ? lower : `${lower.slice(0, at)}@${asciiDomain(lower.slice(at + 1))}`;
}

/**
 * Every group reachable from `direct` through `parentsOf` (a group's own
 * groups), each once, in discovery order. Cycles (A in B in A) are harmless:
 * a visited group is never expanded twice.
 */
export function resolveTransitiveGroups(direct: Iterable<string>, parentsOf: (group: string) => Iterable<string>): string[] {
  const seen = new Set<string>();
  const queue = [...direct];
  while (queue.length > 0) {
    const group = queue.shift()!;
    if (seen.has(group)) continue;
    seen.add(group);
    for (const parent of parentsOf(group)) if (!seen.has(parent)) queue.push(parent);
  }
  return [...seen];
}

class MemorySnapshot implements DirectorySnapshot {
  private readonly byAddress = new Map<string, DirectoryUser>();
  private readonly list: DirectoryUser[] = [];

  constructor(
    users: Iterable<DirectoryUser>,
    readonly syncedAt: Date,
  ) {
    for (const user of users) {
      const mail = normalizeAddress(user.mail);
      const aliases = [...new Set(user.aliases.map(normalizeAddress))].filter((a) => a !== mail);
      const entry: DirectoryUser = Object.freeze({
        ...(user.id !== undefined ? { id: user.id } : {}),
        mail,
        aliases: Object.freeze(aliases) as string[],
        attributes: Object.freeze({ ...user.attributes }),
        groups: Object.freeze([...new Set(user.groups)]) as string[],
        ...(user.photo ? { photo: user.photo } : {}),
      });
      // The first owner of an address keeps it: a later duplicate must not take over someone's mail.
      if (this.byAddress.has(mail)) continue;
      this.list.push(entry);
      for (const address of [mail, ...aliases]) if (!this.byAddress.has(address)) this.byAddress.set(address, entry);
    }
  }

  lookup(address: string): DirectoryUser | undefined {
    return this.byAddress.get(normalizeAddress(address));
  }

  users(): Iterable<DirectoryUser> {
    return this.list.values();
  }

  get size(): number {
    return this.list.length;
  }
}

/**
 * Builds a snapshot from users whose `groups` already hold every group they
 * belong to (ids and names, transitively). Addresses are matched
 * case-insensitively; when two users claim one address, the first keeps it.
 */
export function createDirectorySnapshot(users: Iterable<DirectoryUser>, syncedAt: Date = new Date()): DirectorySnapshot {
  return new MemorySnapshot(users, syncedAt);
}

/**
 * The same snapshot with per-user attributes from the configuration laid over
 * the directory's (configuration wins). Keys are any address of the user;
 * an override for an address nobody owns changes nothing. Where one user has
 * overrides under several addresses, the one under the primary address wins.
 */
export function applyUserOverrides(
  snapshot: DirectorySnapshot,
  overrides: ReadonlyMap<string, Readonly<Record<string, string>>>,
): DirectorySnapshot {
  if (overrides.size === 0) return snapshot;
  const perUser = new Map<DirectoryUser, Array<[boolean, Readonly<Record<string, string>>]>>();
  for (const [address, attributes] of overrides) {
    const user = snapshot.lookup(address);
    if (!user) continue;
    const list = perUser.get(user) ?? [];
    list.push([normalizeAddress(address) === user.mail, attributes]);
    perUser.set(user, list);
  }
  const users = [...snapshot.users()].map((user) => {
    const layers = perUser.get(user);
    if (!layers) return user;
    // Alias overrides first, the primary address last so it wins.
    layers.sort(([aPrimary], [bPrimary]) => Number(aPrimary) - Number(bPrimary));
    const attributes = { ...user.attributes };
    for (const [, layer] of layers) {
      // Plain assignment, never Object.assign: a `__proto__` key must not reach the prototype.
      for (const [name, value] of Object.entries(layer)) if (name !== '__proto__') attributes[name] = value;
    }
    return { ...user, attributes };
  });
  return createDirectorySnapshot(users, snapshot.syncedAt);
}

/** Addresses in `overrides` that match no user of the snapshot (likely typos). */
export function unmatchedOverrides(snapshot: DirectorySnapshot, overrides: ReadonlyMap<string, unknown>): string[] {
  return [...overrides.keys()].filter((address) => !snapshot.lookup(address));
}
