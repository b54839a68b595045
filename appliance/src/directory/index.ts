export type * from './types';
export {
  applyUserOverrides,
  createDirectorySnapshot,
  normalizeAddress,
  resolveTransitiveGroups,
  unmatchedOverrides,
} from './snapshot';
export { loadDirectoryFile, parseDirectoryFile } from './file';
export { createGraphDirectorySource, createGraphClient, USER_SELECT, GRAPH_SCOPE, type GraphDirectoryOptions, type GraphDirectorySource } from './graph';
