export type * from './types';
export {
  applyUserOverrides,
  createDirectorySnapshot,
  normalizeAddress,
  resolveTransitiveGroups,
  unmatchedOverrides,
} from './snapshot';
export { loadDirectoryFile, parseDirectoryFile } from './file';
