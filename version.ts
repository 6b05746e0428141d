/**
 * The release version: the one number `timenode --version`, the RPC and the handshake's user
 * agent all report.
 *
 * Owns: the version string.
 * Must never: be tied to the wire protocol. The protocol has its own number in
 * network/messages.ts, bumped only when the wire format changes (docs/lessons.md#7).
 */

export const TIMENODE_VERSION = "0.1.0";

/** Sent in every hello; informational only, never used to accept or refuse a peer. */
export const USER_AGENT = `timenode/${TIMENODE_VERSION}`;
