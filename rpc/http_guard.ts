/**
 * Who may talk to the RPC port, decided before any request is read: the client IP allow list
 * (`--rpc-allow-ip`), the Host header check against DNS rebinding (`--rpc-allow-host`), and the
 * rule that a browser's cross-origin request (any `Origin` header) is refused.
 *
 * Owns: CIDR parsing and matching, Host header parsing and matching, the loopback rule.
 * Must never: do I/O, or trust a header: every value is bounded and parsed strictly, and
 * anything that does not parse is refused.
 */
import { BlockList, isIPv4, isIPv6 } from "node:net";
import { isLoopback, tryCanonicalIp } from "../network/peer_key.ts";

/** A Host header longer than a DNS name plus a port is garbage, not a name. */
const MAX_HOST_HEADER_CHARS = 300;

/** A parsed `--rpc-allow-ip` value: an address with a prefix length. */
export interface Cidr {
  address: string;
  prefix: number;
  family: "ipv4" | "ipv6";
}

/**
 * Parses "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128). Returns the reason
 * when `text` is not one, for the usage error.
 */
export function parseCidr(text: string): Cidr | string {
  if (text.length > 60) return "expected an IP address or CIDR (too long)";
  const slash = text.indexOf("/");
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIPv4(address) ? "ipv4" : isIPv6(address) ? "ipv6" : null;
  if (family === null) return "expected an IPv4 or IPv6 address, optionally with /PREFIX";
  const max = family === "ipv4" ? 32 : 128;
  if (slash < 0) return { address, prefix: max, family };
  const prefixText = text.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return `prefix must be 0..${max}`;
  return { address, prefix, family };
}

/**
 * The client IPs the RPC accepts: loopback always (a local operator cannot lock themselves out),
 * plus the configured networks. IPv4-mapped IPv6 clients ("::ffff:10.0.0.7") count as IPv4.
 */
export class IpAllowList {
  readonly #list = new BlockList();

  constructor(readonly cidrs: readonly Cidr[]) {
    for (const c of cidrs) this.#list.addSubnet(c.address, c.prefix, c.family);
  }

  allows(ip: string): boolean {
    const canonical = tryCanonicalIp(ip);
    if (canonical === null) return false;
    if (isLoopback(canonical)) return true;
    return this.#list.check(canonical, isIPv4(canonical) ? "ipv4" : "ipv6");
  }
}

/** Whether a `--rpc` host only ever accepts connections from this machine. */
export function isLoopbackBind(host: string): boolean {
  return host.toLowerCase() === "localhost" || isLoopback(host);
}

/**
 * The Host header values a request may carry: names of this RPC endpoint that a DNS rebinding
 * page cannot produce. A rebinding attack makes a browser send the attacker's own name; a name
 * is accepted only if the operator listed it.
 */
export class HostAllowList {
  readonly #names: Set<string>;
  readonly #extraWithPort = new Set<string>();

  /**
   * `bindHost` is the `--rpc` host, `port` the bound port, `extra` the `--rpc-allow-host`
   * values: a name (accepted with the RPC port) or a "name:port" (accepted with that port,
   * for a reverse proxy or tunnel that forwards another port).
   */
  constructor(bindHost: string, readonly port: number, extra: readonly string[] = []) {
    const names = ["localhost", "127.0.0.1", "::1", bindHost];
    this.#names = new Set(names.map((n) => normalizeHost(n)));
    for (const e of extra) {
      const parsed = parseHostHeader(e);
      if (parsed === null) continue;
      if (parsed.port === null) this.#names.add(parsed.host);
      else this.#extraWithPort.add(`${parsed.host} ${parsed.port}`);
    }
  }

  /**
   * True when `header` names this endpoint: a listed name with the RPC port, or the IP the
   * connection actually arrived on (`localIp`, which covers a wildcard bind such as 0.0.0.0
   * reached as 10.0.0.5). An absent or malformed header is refused.
   */
  allows(header: string | null, localIp: string | null): boolean {
    if (header === null) return false;
    const parsed = parseHostHeader(header);
    if (parsed === null) return false;
    const port = parsed.port ?? 80;
    if (this.#extraWithPort.has(`${parsed.host} ${port}`)) return true;
    if (port !== this.port) return false;
    if (this.#names.has(parsed.host)) return true;
    const local = localIp === null ? null : tryCanonicalIp(localIp);
    return local !== null && tryCanonicalIp(parsed.host) === local;
  }
}

/**
 * Parses a Host header ("name", "name:port", "1.2.3.4:80", "[::1]:24101") into a lowercase
 * host without brackets and a port (null when absent). Null when malformed.
 */
export function parseHostHeader(value: string): { host: string; port: number | null } | null {
  const v = value.trim();
  if (v.length === 0 || v.length > MAX_HOST_HEADER_CHARS) return null;
  let host: string;
  let portText: string | null = null;
  if (v.startsWith("[")) {
    const close = v.indexOf("]");
    if (close < 0) return null;
    host = v.slice(1, close);
    if (!isIPv6(host)) return null;
    const rest = v.slice(close + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) return null;
      portText = rest.slice(1);
    }
  } else {
    const colon = v.lastIndexOf(":");
    if (colon >= 0) {
      host = v.slice(0, colon);
      portText = v.slice(colon + 1);
    } else host = v;
    if (!/^[A-Za-z0-9.-]+$/.test(host)) return null;
  }
  let port: number | null = null;
  if (portText !== null) {
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
    if (!(port >= 1 && port <= 65_535)) return null;
  }
  return { host: normalizeHost(host), port };
}

/** Lowercase, no trailing dot, IP literals in canonical form. */
function normalizeHost(host: string): string {
  const h = host.toLowerCase().replace(/\.$/, "");
  return tryCanonicalIp(h) ?? h;
}
