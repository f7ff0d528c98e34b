// The one table from error code to HTTP status. The CLI has its twin for exit codes.
export const HTTP_STATUS: Record<string, number> = {
  INVALID_ARGUMENT: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403, // the caller's role does not allow the route, or no VMConnect grant (api/access.ts)
  TOO_MANY_SIGN_INS: 429, // api/sign-in-throttle.ts
  NOT_FOUND: 404,
  NOT_ATTACHED: 404,
  ALREADY_EXISTS: 409,
  INVALID_STATE: 409,
  AGENT_NOT_READY: 409,
  INTEGRATION_SERVICE_DISABLED: 409,
  TIMEOUT: 504,
  AGENT_TIMEOUT: 504,
  AGENT_DISCONNECTED: 503,
  QMP_ERROR: 500,
  SWITCH_BAD_POLICY: 400,
  SWITCH_BAD_SETTINGS: 400,
  SWITCH_BAD_PORT_ID: 400,
  SWITCH_VETOED: 409,
  SWITCH_NO_EXTENSION: 404,
  SWITCH_FORWARDING_EXTENSION: 409,
  SWITCH_CAPTURE_ACTIVE: 409,
  SWITCH_UPLINK: 409, // an adapter's UDP endpoint cannot be bound (in use, not a local address): the host's state, not a bug
};

// Module codes by family: a bad argument to a disk engine or the block server is the caller's error.
const SUFFIX_STATUS: [RegExp, number][] = [
  [/_(INVALID_ARGUMENT|TOO_LARGE|UNSUPPORTED|BELOW_MINIMUM_SIZE|UNKNOWN_FORMAT)$/, 400],
  [/_(NOT_FOUND|PARENT_NOT_FOUND|NO_SUCH_EXPORT)$/, 404],
  [/_(IN_USE|EXISTS|READ_ONLY|LOG_REPLAY_NEEDED)$/, 409],
];

export function httpStatus(code: string): number {
  return HTTP_STATUS[code] ?? SUFFIX_STATUS.find(([re]) => re.test(code))?.[1] ?? 500;
}
