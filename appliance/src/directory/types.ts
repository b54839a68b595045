// People and their attributes, as the engine consumes them. Sources (a local
// directory file, Microsoft Graph) produce DirectorySnapshots.

export interface DirectoryUser {
  /** Directory object id (Graph `id`), when known. */
  id?: string;
  /** Primary SMTP address, lower-case. */
  mail: string;
  /** Other addresses that identify the same person (proxyAddresses), lower-case. */
  aliases: string[];
  /**
   * Attributes templates use: displayName, givenName, surname, jobTitle,
   * department, companyName, mobilePhone, businessPhones (joined), officeLocation,
   * streetAddress, city, state, postalCode, country, extensionAttribute1..15,
   * and any custom attribute. Missing → undefined. Values are untrusted.
   */
  attributes: Record<string, string | undefined>;
  /** Ids and display names of every group the user belongs to, transitively. */
  groups: string[];
  /** The user's photo, when the directory has one and photos are loaded (a template calls `photo()`). */
  photo?: UserPhoto;
}

/** A user's photo as templates embed it: checked by readPhoto (type by its bytes, size bounded). */
export interface UserPhoto {
  readonly data: Buffer;
  readonly contentType: PhotoType;
}

export type PhotoType = 'image/jpeg' | 'image/png' | 'image/gif';

export interface DirectorySnapshot {
  /** Find a user by any of their addresses (case-insensitive). */
  lookup(address: string): DirectoryUser | undefined;
  users(): Iterable<DirectoryUser>;
  readonly syncedAt: Date;
  readonly size: number;
}
