export type * from './types';
export { ConfigError, formatIssue, formatPath, sortIssues, type ConfigIssue } from './errors';
export {
  DIRECTORY_FILE,
  loadOrgFolder,
  loadOrgFromFiles,
  ORG_FILE,
  readOrgFolder,
  RULES_FILE,
  USERS_FILE,
  type OrgOrigin,
} from './loader';
export {
  ADDRESS_PATTERN,
  ATTRIBUTE_NAME_PATTERN,
  DEFAULT_MAX_EDITABLE_PART_BYTES,
  DEFAULT_PLACEHOLDER,
  directoryFileSchema,
  FILE_SCHEMAS,
  MAX_EMBEDDED_IMAGE_BYTES,
  parseInstant,
  STANDARD_ATTRIBUTES,
  type DirectoryFile,
} from './schema';
export { jsonSchemas } from './json-schema';
export { readYamlWithSchema, type YamlFile } from './yaml-file';
export { checkEjsTemplate, type EjsCheck } from './ejs-check';
export { lintHtmlTemplate, type LintProblem } from './template-lint';
export { didYouMean } from './suggest';
export { seal, unseal, reseal, inspect, writeUnsealedFolder, diffFiles, formatDiff, contentHash, defaultBundleVersion, BundleError, type BundleHeader, type BundleErrorCode, type ConfigDiff } from './bundle';
export { createOrgSource, publishBundle, writeFileAtomic, type OrgSource, type OrgSourceOptions, type OrgSourceStatus, type ReloadResult } from './source';
