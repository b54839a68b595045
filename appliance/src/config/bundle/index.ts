export { seal, unseal, reseal, inspect, defaultBundleVersion, BUNDLE_FORMAT, type BundleHeader, type SealOptions, type UnsealOptions } from './seal';
export { packFiles, unpackFiles, contentHash, checkFileName } from './pack';
export { writeUnsealedFolder } from './folder';
export { diffFiles, formatDiff, type ConfigDiff, type FileChange } from './diff';
export { BundleError, type BundleErrorCode } from './errors';
