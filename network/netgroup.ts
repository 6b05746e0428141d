/**
 * Network groups: which addresses one operator can cheaply hold many of.
 *
 * Owns: the netgroup of an IP (IPv4 /16, IPv6 /32, as Bitcoin Core groups addresses) and the
 * ban prefix of an IP (the IP itself for IPv4, its /64 for IPv6: one IPv6 host is routinely
 * handed a whole /64, so banning one address of it bans nothing).
 * Must never: throw on hostile text, or group a loopback address with anything but loopback.
 */
import { ipScope, tryCanonicalIp } from "./peer_key.ts";

/** Group of every loopback address: local devnets share it and are exempt from group caps. */
export const LOOPBACK_NETGROUP = "loopback";

function v6Groups(ip: string): string[] | null {
  // Expand the canonical form to eight groups; `tryCanonicalIp` already validated it.
  const [head, tail] = ip.includes("::") ? ip.split("::") : [ip, null];
  const h = head ? head.split(":") : [];
  const t = tail === null ? [] : tail ? tail.split(":") : [];
  const zeros = tail === null ? [] : new Array<string>(8 - h.length - t.length).fill("0");
  const all = [...h, ...zeros, ...t];
  return all.length === 8 ? all : null;
}

/**
 * The netgroup of an IP literal: "4:a.b" for IPv4 (its /16), "6:xxxx:yyyy" for IPv6 (its /32),
 * `LOOPBACK_NETGROUP` for loopback, and the text itself for anything else (a hostname is its
 * own group, so it can never share a cap with an IP).
 */
export function netgroup(address: string): string {
  const ip = tryCanonicalIp(address);
  if (ip === null) return `name:${address.toLowerCase()}`;
  if (ipScope(ip) === "loopback") return LOOPBACK_NETGROUP;
  if (!ip.includes(":")) {
    const [a, b] = ip.split(".");
    return `4:${a}.${b}`;
  }
  const g = v6Groups(ip);
  return g ? `6:${g[0]}:${g[1]}` : `6:${ip}`;
}

/**
 * What a ban of `ip` covers: the IP for IPv4 and loopback, "xxxx:xxxx:xxxx:xxxx::/64" for other
 * IPv6. Null when `ip` is not an IP literal (a "host:port" loopback key is banned as itself).
 */
export function banPrefix(ip: string): string | null {
  const c = tryCanonicalIp(ip);
  if (c === null) return null;
  if (!c.includes(":") || ipScope(c) === "loopback") return c;
  const g = v6Groups(c);
  return g ? `${g.slice(0, 4).join(":")}::/64` : c;
}
