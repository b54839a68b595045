export type * from './types';
export {
  applyUserOverrides,
  createDirectorySnapshot,
  normalizeAddress,
  resolveTransitiveGroups,
  unmatchedOverrides,
} from './snapshot';
export { loadDirectoryFile, parseDirectoryFile } from './file';
export { MAX_PHOTO_BYTES, readPhoto } from './photo';
export { createDirectoryFileSource, type DirectoryFileSourceOptions, type DirectoryFileSource } from './file-source';
export { createGraphDirectorySource, createGraphClient, USER_SELECT, GRAPH_SCOPE, GRAPH_CLOUDS, GRAPH_CLOUD_NAMES, otherCloudOf, type GraphCloud, type GraphDirectoryOptions, type GraphDirectorySource } from './graph';
