export type * from './types';
export { transformMessage } from './transform';
