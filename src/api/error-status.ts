// The one table from error code to HTTP status. The CLI has its twin for exit codes.
export const HTTP_STATUS: Record<string, number> = {
  INVALID_ARGUMENT: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  NOT_ATTACHED: 404,
  ALREADY_EXISTS: 409,
  INVALID_STATE: 409,
  AGENT_NOT_READY: 409,
  TIMEOUT: 504,
  AGENT_TIMEOUT: 504,
  AGENT_DISCONNECTED: 503,
  QMP_ERROR: 500,
};

export function httpStatus(code: string): number {
  return HTTP_STATUS[code] ?? 500;
}
