// The Azure SDKs throw RestError (from @azure/core-rest-pipeline, which we do
// not depend on directly); recognise it by shape rather than by class.
export interface RestErrorLike extends Error {
  statusCode?: number;
  code?: string;
}

export function asRestError(error: unknown): RestErrorLike | undefined {
  return error instanceof Error && error.name === 'RestError' ? (error as RestErrorLike) : undefined;
}
