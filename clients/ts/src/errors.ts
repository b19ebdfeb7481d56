// EventStreamError: every error of this package, one class carrying the
// server's error code (docs/protocol.md, "Errors"); never parse its message.

/** Codes of errors found on this side, before or without the server. */
export const LocalCode = {
  /** Nothing could be exchanged with the server (network, timeout, a reply that is not the protocol's). */
  Network: "network",
  /** transport "push" where there is no WebSocket (Node 20 without --experimental-websocket, and no ClientConfig.WebSocket). */
  NoWebSocket: "no_websocket",
  /** send: the queue already holds ClientConfig.maxQueue events. */
  QueueFull: "queue_full",
  /** send, putSnapshot or putDump of a spectator (ClientConfig.spectate), which sends no events and uploads nothing (esclient's ErrSpectator). */
  Spectator: "spectator",
  /** A spectator's request was answered as a player's (the reply has a public id): the server does not know spectators, and run stops (esclient's ErrNotSpectating). */
  NotSpectating: "not_spectating",
  /** spawn/destroy outside the processing of a tick. */
  NotProcessing: "not_processing",
  /** spawn/destroy of null or undefined. */
  NilEntity: "nil_entity",
  /** spawn of an entity already in the scene, or about to be. */
  Spawned: "spawned",
  /** destroy of an entity that is not in the scene. */
  UnknownEntity: "unknown_entity",
  /** sendEvent while ticks already played are re-simulated: nothing was sent. */
  Replaying: "replaying",
  /** A snapshot that is not a SimDriver's, or that the Sim could not restore. */
  BadSnapshot: "bad_snapshot",
} as const;

/**
 * EventStreamError is an error of the server (status > 0, code the
 * protocol's, such as "bad_stream" or "rate_limited") or found locally
 * (status 0, code one of the server's codes for the same rule, such as
 * "reserved_type", or of LocalCode).
 */
export class EventStreamError extends Error {
  /** The HTTP status of the server's answer; 0 when the error is local. */
  readonly status: number;
  /** The protocol's error code ("" when a reply was not eventstreamd's), or a LocalCode. */
  readonly code: string;
  /** How long the server asked to wait before a retry (Retry-After), in ms; 0 when it did not say. */
  readonly retryAfterMs: number;

  constructor(status: number, code: string, message: string, retryAfterMs = 0, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "EventStreamError";
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }

  /**
   * retryable reports whether the same request may succeed later: server
   * errors (5xx), 408, 429, failures to reach the server at all, and
   * epoch_mismatch (the stream started anew: the client learns its new
   * epoch with a sync that posts nothing, then posts again, as
   * EventStreamClient does by itself).
   */
  get retryable(): boolean {
    return this.status >= 500 || this.status === 408 || this.status === 429 || this.code === LocalCode.Network || this.code === "epoch_mismatch";
  }
}

/**
 * errorStatus is the table of docs/protocol.md, "Errors": each code and its HTTP status, as Go's
 * internal/protocol has it. Both test suites check their table against the doc's.
 */
const errorStatus: Readonly<Record<string, number>> = {
  bad_stream: 400,
  bad_client: 400,
  bad_tick: 400,
  bad_request: 400,
  reserved_type: 400,
  too_many_events: 400,
  unauthorized: 401,
  token_expired: 401,
  bad_origin: 403,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  upgrade_required: 426,
  stream_full: 409,
  snapshot_mismatch: 409,
  epoch_mismatch: 409,
  too_large: 413,
  rate_limited: 429,
  server_full: 503,
  server_busy: 503,
  store_unavailable: 503,
  store_unknown: 503,
  internal: 500,
};

/** statusOf returns the HTTP status the protocol gives an error code that comes as a push message; 400 for a code it does not know. */
export function statusOf(code: string): number {
  return Object.hasOwn(errorStatus, code) ? errorStatus[code]! : 400;
}
