/**
 * IP addresses, "host:port" strings, and the peer registry key.
 *
 * Owns: strict parsing and canonical formatting of IPv4/IPv6 literals (RFC 5952 for IPv6,
 * IPv4-mapped IPv6 folded to IPv4, zone ids stripped), "host:port" with `[v6]:port`, address
 * scopes (loopback, private, public...), and `peerKey`, the one rule that names a peer.
 * Must never: resolve names, touch sockets, or throw on input that came from the network.
 * Functions that take hostile text (`parseHostPort`, `tryCanonicalIp`, `canonicalAddress`,
 * `peerKey`'s announced address) return null for garbage (`parseHostPortExplained`: a reason); only `canonicalIp` and
 * `formatHostPort` throw, and only for values our own code or the OS produced.
 *
 * The registry key (`peerKey`):
 *  - A non-loopback peer is keyed by its canonical remote IP. One connection per IP is what
 *    the registry deduplicates, and the IP is the only thing about a remote peer we verified.
 *  - On loopback every dial arrives from 127.0.0.1, and a devnet runs several nodes on one
 *    machine, so the IP cannot tell nodes apart. A loopback peer is keyed by the loopback
 *    listen address it announces in `hello` ("127.0.0.1:24310"): that is the address we would
 *    dial to reach it, so an inbound and an outbound connection to the same node get the same
 *    key and the simultaneous-dial rule can pick one (docs/lessons.md#1). Wildcard
 *    announcements ("0.0.0.0:P", "[::]:P") and "localhost:P" are keyed as "127.0.0.1:P",
 *    because on this machine that is where such a listener answers.
 *  - A loopback peer that announces no listen address, or a non-loopback one, is keyed by its
 *    socket address "127.0.0.1:<remote port>". Why not the bare IP: every such peer would then
 *    share one key, and two of them (a tool, a `--listen off` node) would evict each other in a
 *    reconnect storm. Why not its non-loopback announcement: we did not reach it there and
 *    cannot check the claim, and that address is not how we would dial it back. The remote
 *    port is unique among live connections and cannot collide with a listen key in practice
 *    (the OS never hands out a bound listening port as an ephemeral port). Such peers cannot
 *    be dialed back, so there is no simultaneous-dial race to deduplicate; the price is that
 *    their ban score starts fresh on each reconnect, which is acceptable on our own machine.
 *  - A bare loopback IP is never a key produced here, and `isBareLoopbackIp` lets ban and rate
 *    limit code refuse to act on one anyway (docs/lessons.md#18: never ban your own machine).
 */

/** Longest textual IPv6 address ("ffff:...:255.255.255.255" is 45); anything longer is junk. */
const MAX_IPV6_TEXT = 45;
/** Zone ids are interface names or numbers; Linux caps interface names at 15 bytes. */
const MAX_ZONE_ID = 64;
/** DNS limit for a whole name (RFC 1035). */
export const MAX_HOSTNAME_LENGTH = 253;
/** DNS limit for one label. */
const MAX_LABEL_LENGTH = 63;
/** "[" + 45 + zone + "]:65535" fits well within this; longer input is rejected unread. */
const MAX_HOST_PORT_TEXT = MAX_HOSTNAME_LENGTH + 8 + MAX_ZONE_ID;
/** Where a wildcard or "localhost" announcement from a loopback peer answers. */
const LOOPBACK_V4 = "127.0.0.1";

export interface HostPort {
  /** A canonical IP literal, or a lowercase hostname. */
  host: string;
  port: number;
}

export type AddressScope =
  | "loopback"
  | "private"
  | "unspecified"
  | "multicast"
  | "reserved"
  | "public";

// ---------------------------------------------------------------------------------------------
// IP parsing: text → 4 or 16 bytes. IPv4-mapped IPv6 comes back as 4 bytes.

const V4_PART = /^(0|[1-9][0-9]{0,2})$/;
const V6_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseIpv4Bytes(s: string): Uint8Array | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    // Leading zeros are refused: inet_aton reads them as octal, so "010.0.0.1" is ambiguous.
    if (!V4_PART.test(parts[i])) return null;
    const v = Number(parts[i]);
    if (v > 255) return null;
    out[i] = v;
  }
  return out;
}

/** Parses colon-separated groups into 16-bit values; an IPv4 tail counts as two groups. */
function parseV6Groups(s: string, allowIpv4Tail: boolean): number[] | null {
  if (s === "") return [];
  const tokens = s.split(":");
  const groups: number[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (allowIpv4Tail && i === tokens.length - 1 && t.includes(".")) {
      const v4 = parseIpv4Bytes(t);
      if (!v4) return null;
      groups.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
    } else {
      if (!V6_GROUP.test(t)) return null;
      groups.push(parseInt(t, 16));
    }
  }
  return groups;
}

function parseIpv6Bytes(input: string): Uint8Array | null {
  let s = input;
  const zone = s.indexOf("%");
  if (zone >= 0) {
    const id = s.slice(zone + 1);
    if (id.length === 0 || id.length > MAX_ZONE_ID || id.includes("%")) return null;
    s = s.slice(0, zone);
  }
  if (s.length > MAX_IPV6_TEXT || !s.includes(":")) return null;
  const halves = s.split("::");
  let groups: number[];
  if (halves.length === 1) {
    const all = parseV6Groups(s, true);
    if (!all || all.length !== 8) return null;
    groups = all;
  } else if (halves.length === 2) {
    const head = parseV6Groups(halves[0], false);
    const tail = parseV6Groups(halves[1], true);
    // "::" stands for at least one zero group.
    if (!head || !tail || head.length + tail.length > 7) return null;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    return null;
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = groups[i] >> 8;
    out[2 * i + 1] = groups[i] & 0xff;
  }
  return out;
}

function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** 4 bytes for IPv4 (including IPv4-mapped IPv6), 16 for IPv6, null for anything else. */
function parseIpBytes(ip: string): Uint8Array | null {
  if (typeof ip !== "string" || ip.length === 0 || ip.length > MAX_IPV6_TEXT + 1 + MAX_ZONE_ID) {
    return null;
  }
  if (!ip.includes(":")) return parseIpv4Bytes(ip);
  const b = parseIpv6Bytes(ip);
  if (!b) return null;
  return isV4Mapped(b) ? b.slice(12) : b;
}

function formatIpBytes(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((b[2 * i] << 8) | b[2 * i + 1]);
  // RFC 5952 §4.2: compress the longest run of two or more zero groups, the first on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(":");
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

// ---------------------------------------------------------------------------------------------
// Public IP helpers.

export class AddressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AddressError";
  }
}

/** Canonical text of an IP literal, or null if `ip` is not one. Safe on hostile input. */
export function tryCanonicalIp(ip: string): string | null {
  const b = parseIpBytes(ip);
  return b ? formatIpBytes(b) : null;
}

/**
 * Canonical text of an IP literal: IPv4 dotted quad; IPv6 lowercase, compressed per RFC 5952;
 * "::ffff:1.2.3.4" folded to "1.2.3.4"; zone ids ("%eth0") stripped.
 * Throws `AddressError` for anything else: call it on addresses the OS gave us, and
 * `tryCanonicalIp` on addresses a peer gave us.
 */
export function canonicalIp(ip: string): string {
  const c = tryCanonicalIp(ip);
  if (c === null) throw new AddressError(`not an IP address: ${JSON.stringify(ip)}`);
  return c;
}

export function isIp(s: string): boolean {
  return parseIpBytes(s) !== null;
}

export function isIpv6(ip: string): boolean {
  return parseIpBytes(ip)?.length === 16;
}

/** 127.0.0.0/8 and ::1 (also in IPv4-mapped form). False for anything that is not an IP. */
export function isLoopback(ip: string): boolean {
  return ipScope(ip) === "loopback";
}

function inV4(b: Uint8Array, a0: number, a1: number, prefixBits: number): boolean {
  const value = (b[0] << 8) | b[1];
  const net = (a0 << 8) | a1;
  const mask = (0xffff << (16 - prefixBits)) & 0xffff;
  return (value & mask) === (net & mask);
}

/**
 * Which kind of address an IP literal is; null if it is not one. "private" covers RFC 1918,
 * carrier-grade NAT (100.64/10), link-local (169.254/16, fe80::/10) and unique-local
 * (fc00::/7): addresses that mean something only on one network, so they are neither learned
 * from nor given to peers outside it.
 */
export function ipScope(ip: string): AddressScope | null {
  const b = parseIpBytes(ip);
  if (!b) return null;
  if (b.length === 4) {
    if (b[0] === 127) return "loopback";
    if (b[0] === 0) return "unspecified"; // 0.0.0.0/8: "this network", never a destination
    if (b[0] === 10 || inV4(b, 172, 16, 12) || inV4(b, 192, 168, 16)) return "private";
    if (inV4(b, 100, 64, 10) || inV4(b, 169, 254, 16)) return "private";
    if (b[0] >= 224 && b[0] <= 239) return "multicast";
    if (b[0] >= 240) return "reserved"; // includes 255.255.255.255
    return "public";
  }
  let zeroPrefix = 0;
  while (zeroPrefix < 16 && b[zeroPrefix] === 0) zeroPrefix++;
  if (zeroPrefix === 16) return "unspecified";
  if (zeroPrefix === 15 && b[15] === 1) return "loopback";
  if (zeroPrefix >= 12) return "reserved"; // ::/96, deprecated IPv4-compatible form
  if (b[0] === 0xff) return "multicast";
  if ((b[0] & 0xfe) === 0xfc || (b[0] === 0xfe && (b[1] & 0xc0) === 0x80)) return "private";
  return "public";
}

// ---------------------------------------------------------------------------------------------
// Hostnames and "host:port".

const LABEL = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** A syntactically valid DNS name (lowercased), or null. Never resolves anything. */
function canonicalHostname(s: string): string | null {
  if (s.length === 0 || s.length > MAX_HOSTNAME_LENGTH) return null;
  const name = s.toLowerCase();
  const labels = name.split(".");
  for (const label of labels) {
    if (label.length > MAX_LABEL_LENGTH || !LABEL.test(label)) return null;
  }
  // An all-numeric last label means a malformed IPv4 literal ("1.2.3.256"), not a name.
  if (/^[0-9]+$/.test(labels[labels.length - 1])) return null;
  return name;
}

/** Digits without a leading zero ("0" itself only counts where port 0 is allowed). */
const PORT = /^(0|[1-9][0-9]{0,4})$/;
const ALL_DIGITS_AND_DOTS = /^[0-9.]+$/;

/** `parseHostPortExplained`'s answer: the address, or a short reason for an operator. */
export type HostPortParse = { ok: true; value: HostPort } | { ok: false; reason: string };

export interface HostPortOptions {
  /** Accept port 0: an ephemeral listener (`--listen 127.0.0.1:0`), never a dial target. */
  allowPortZero?: boolean;
}

/**
 * `parseHostPort` with the reason a text is refused ("IPv6 addresses need brackets, ..."), for
 * command-line and config-file errors. The one parser: `parseHostPort` is this without reasons.
 */
export function parseHostPortExplained(s: string, opts: HostPortOptions = {}): HostPortParse {
  const fail = (reason: string): HostPortParse => ({ ok: false, reason });
  const expected = "expected HOST:PORT";
  if (typeof s !== "string" || s.length === 0) return fail(expected);
  if (s.length > MAX_HOST_PORT_TEXT) return fail(`${expected} (too long)`);
  let hostText: string;
  let portText: string;
  if (s.startsWith("[")) {
    const close = s.indexOf("]");
    if (close < 0 || s[close + 1] !== ":") return fail(`${expected} as [IPv6]:PORT`);
    hostText = s.slice(1, close);
    portText = s.slice(close + 2);
    // Brackets are for IPv6 only; "[1.2.3.4]:5" is not a form anyone writes on purpose.
    if (!hostText.includes(":") || tryCanonicalIp(hostText) === null) {
      return fail("not a valid IPv6 address");
    }
  } else {
    const colon = s.lastIndexOf(":");
    if (colon < 0) return fail(`${expected} (missing :PORT)`);
    if (colon === 0) return fail(`${expected} (missing HOST)`);
    hostText = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (hostText.includes(":")) return fail("IPv6 addresses need brackets, e.g. [::1]:24100");
  }
  const ip = tryCanonicalIp(hostText);
  let host: string;
  if (ip !== null) {
    host = ip;
  } else if (ALL_DIGITS_AND_DOTS.test(hostText)) {
    return fail("not a valid IPv4 address");
  } else {
    const name = canonicalHostname(hostText);
    if (name === null) return fail("not a valid hostname");
    host = name;
  }
  const minPort = opts.allowPortZero ? 0 : 1;
  const port = PORT.test(portText) ? Number(portText) : NaN;
  if (!(port >= minPort && port <= 65_535)) return fail(`port must be ${minPort}..65535`);
  return { ok: true, value: { host, port } };
}

/**
 * Parses "1.2.3.4:5", "[2001:db8::1]:5" or "host.example:5". Hosts come back canonical (IPs
 * via `canonicalIp`, names lowercased). Returns null for garbage: port 0 or out of range,
 * leading zeros, an unbracketed IPv6 address (ambiguous), invalid names, over-long input.
 */
export function parseHostPort(s: string): HostPort | null {
  const r = parseHostPortExplained(s);
  return r.ok ? r.value : null;
}

/**
 * "host:port" with IPv6 in brackets. IP hosts are canonicalized. Throws `AddressError` for an
 * invalid host or a port outside 1..65535 (0..65535 with `allowPortZero`, for a listener the OS
 * gives a port): this formats our own values, never hostile ones.
 */
export function formatHostPort(host: string, port: number, opts: HostPortOptions = {}): string {
  const minPort = opts.allowPortZero ? 0 : 1;
  if (!Number.isInteger(port) || port < minPort || port > 65_535) {
    throw new AddressError(`invalid port: ${port}`);
  }
  const ip = tryCanonicalIp(host);
  if (ip !== null) return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
  const name = canonicalHostname(host);
  if (name === null) throw new AddressError(`invalid host: ${JSON.stringify(host)}`);
  return `${name}:${port}`;
}

/** The canonical spelling of a "host:port" string, or null if it is garbage. */
export function canonicalAddress(s: string): string | null {
  const hp = parseHostPort(s);
  return hp === null ? null : formatHostPort(hp.host, hp.port);
}

/** Scope of a parsed host: an IP's scope, "loopback" for "localhost", "public" for names. */
export function hostScope(host: string): AddressScope {
  const scope = ipScope(host);
  if (scope !== null) return scope;
  return host.toLowerCase() === "localhost" ? "loopback" : "public";
}

// ---------------------------------------------------------------------------------------------
// Registry keys.

/**
 * The key host for a listener announced by a loopback peer, or null if the announcement does
 * not point at this machine. Wildcards and "localhost" answer on 127.0.0.1.
 */
function loopbackListenHost(host: string): string | null {
  const scope = hostScope(host);
  if (scope === "unspecified" || host === "localhost") return LOOPBACK_V4;
  if (scope === "loopback") return host;
  return null;
}

/**
 * The registry key of a handshaken peer (see the header for the rule and its reasons).
 * `remoteIp` and `remotePort` are the TCP connection's remote address as the OS reports it
 * (trusted; throws `AddressError` if the IP is not one); `announcedListenAddress` is the
 * hostile `hello.listenAddress` ("" or null when the peer does not listen).
 */
export function peerKey(
  remoteIp: string,
  announcedListenAddress: string | null,
  remotePort: number,
): string {
  const ip = canonicalIp(remoteIp);
  if (!isLoopback(ip)) return ip;
  const announced = announcedListenAddress ? parseHostPort(announcedListenAddress) : null;
  if (announced !== null) {
    const host = loopbackListenHost(announced.host);
    if (host !== null) return formatHostPort(host, announced.port);
  }
  return formatHostPort(ip, remotePort);
}

/**
 * The key a peer will have once we reach it by dialing `address` ("host:port"), so the
 * dial planner can tell it is already connected before dialing again. Null when it
 * cannot be known before resolving (a hostname other than localhost) or `address` is garbage.
 */
export function keyForDialTarget(address: string): string | null {
  const hp = parseHostPort(address);
  if (hp === null) return null;
  const loopbackHost = loopbackListenHost(hp.host);
  if (loopbackHost !== null) return formatHostPort(loopbackHost, hp.port);
  return isIp(hp.host) ? hp.host : null;
}

/**
 * Where a handshaken peer says it can be dialed, made concrete for the address book: a
 * wildcard host ("0.0.0.0:P", "[::]:P") becomes the remote IP we see it from; anything that
 * is not a valid "host:port" gives null. Not a key, and not verified: the address book's
 * scope rules still decide whether to keep it.
 */
export function announcedDialAddress(remoteIp: string, announced: string | null): string | null {
  const hp = announced ? parseHostPort(announced) : null;
  if (hp === null) return null;
  const host = hostScope(hp.host) === "unspecified" ? canonicalIp(remoteIp) : hp.host;
  return formatHostPort(host, hp.port);
}

/** The host part of a key: the key itself for a bare IP, the host for "host:port". */
function keyHost(key: string): string | null {
  const ip = tryCanonicalIp(key);
  if (ip !== null) return ip;
  return parseHostPort(key)?.host ?? null;
}

/** Scope of a key's host (a bare IP or "host:port"), or null if `key` is neither. */
export function keyScope(key: string): AddressScope | null {
  const host = keyHost(key);
  return host === null ? null : hostScope(host);
}

/** True for a bare loopback IP or a loopback "host:port" key (rate limits exempt these). */
export function isLoopbackKey(key: string): boolean {
  return keyScope(key) === "loopback";
}

/**
 * True for a bare loopback IP such as "127.0.0.1" or "::1". Banning or throttling such a key
 * would cut off every local node at once, so ban and rate-limit code refuse to.
 */
export function isBareLoopbackIp(key: string): boolean {
  return isLoopback(key);
}
