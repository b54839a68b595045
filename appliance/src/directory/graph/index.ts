export { createGraphDirectorySource, USER_SELECT, type GraphDirectoryOptions, type GraphDirectorySource } from './source';
export { createGraphClient, GRAPH_SCOPE, GRAPH_BASE_URL, GRAPH_CLOUDS, GRAPH_CLOUD_NAMES, otherCloudOf, type GraphClientOptions, type GraphCloud } from './client';
