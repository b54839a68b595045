export { createGraphDirectorySource, USER_SELECT, type GraphDirectoryOptions, type GraphDirectorySource } from './source';
export { createGraphClient, GRAPH_SCOPE, GRAPH_BASE_URL, type GraphClientOptions } from './client';
