/**
 * Whether to accept a new inbound socket, before it has said a word.
 *
 * Owns: the handshake budget (sockets that have not finished their handshake are few and
 * short-lived for honest peers, so they get a small budget of their own, total and per IP,
 * that never eats into `--max-inbound`) and the per-netgroup inbound cap (one operator holds
 * many addresses of one /16 or /32 cheaply, few netgroups: docs/security.md).
 * Must never: count a handshaken peer against the handshake budget, or apply a per-IP or
 * per-netgroup rule to loopback (local devnets share 127.0.0.1); loopback still shares the
 * total handshake budget, so a local flood cannot open unbounded sockets either.
 */
import { LOOPBACK_NETGROUP, netgroup } from "./netgroup.ts";

export interface InboundLimits {
  /** Sockets in the handshake at once, from everyone. */
  maxHandshaking: number;
  /** Sockets in the handshake at once from one non-loopback IP. */
  maxHandshakingPerIp: number;
  /** Inbound sockets (handshaking or ready) from one non-loopback netgroup. */
  maxInboundPerNetgroup: number;
}

/** One open inbound socket, as the admission rule sees it. */
export interface OpenInbound {
  ip: string;
  handshaking: boolean;
}

export type InboundVerdict =
  | { admit: true }
  | { admit: false; reason: "handshake-budget" | "handshake-budget-ip" | "netgroup-full" };

/** The verdict for a new socket from canonical `ip`, given the inbound sockets already open. */
export function admitInbound(
  ip: string,
  open: Iterable<OpenInbound>,
  limits: InboundLimits,
): InboundVerdict {
  const group = netgroup(ip);
  const exempt = group === LOOPBACK_NETGROUP;
  let handshaking = 0;
  let handshakingFromIp = 0;
  let inGroup = 0;
  for (const o of open) {
    if (o.handshaking) {
      handshaking++;
      if (o.ip === ip) handshakingFromIp++;
    }
    if (!exempt && netgroup(o.ip) === group) inGroup++;
  }
  if (handshaking >= limits.maxHandshaking) return { admit: false, reason: "handshake-budget" };
  if (exempt) return { admit: true };
  if (handshakingFromIp >= limits.maxHandshakingPerIp) {
    return { admit: false, reason: "handshake-budget-ip" };
  }
  if (inGroup >= limits.maxInboundPerNetgroup) return { admit: false, reason: "netgroup-full" };
  return { admit: true };
}
