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

/** statusOf returns the HTTP status the protocol gives an error code that comes as a push message. */
export function statusOf(code: string): number {
  switch (code) {
    case "rate_limited":
      return 429;
    case "server_full":
    case "server_busy":
    case "store_unavailable":
    case "store_unknown":
      return 503;
    case "stream_full":
    case "snapshot_mismatch":
    case "epoch_mismatch":
      return 409;
    case "too_large":
      return 413;
    case "not_found":
      return 404;
    case "internal":
      return 500;
  }
  return 400;
}
