/**
 * RPC authentication, as bitcoind does it: a random cookie written to the data dir at start
 * (HTTP Basic `__cookie__:<secret>`), and `--rpc-auth USER:SALT$HASH` entries whose hash is
 * HMAC-SHA256 keyed with the salt over the password (the format of bitcoind's `rpcauth`, so a
 * line made by either tool works in both).
 *
 * Owns: the cookie file (create with mode 0600, remove at a clean stop), the rpcauth format,
 * checking an `Authorization` header in constant time, and the failed-attempt throttle.
 * Must never: log or return a secret, compare secrets with `===`, or keep a secret on disk after
 * a clean stop.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";
import { PerKeyLimiter } from "../network/rate_limit.ts";

/** The user name of cookie authentication, as bitcoind's. */
export const COOKIE_USER = "__cookie__";
/** The cookie file in the data dir; its one line is `__cookie__:<secret>`. */
export const COOKIE_FILE = ".cookie";
/** 32 random bytes: as strong as the node key, far beyond guessing at any request rate. */
const COOKIE_SECRET_BYTES = 32;
/** bitcoind's rpcauth salt: 16 random bytes as hex. */
const SALT_BYTES = 16;
/** A generated rpcauth password: 32 random bytes, base64url (43 characters). */
const PASSWORD_BYTES = 32;
/** User names are short labels; ":" would end the name in HTTP Basic. */
const USER_RE = /^[A-Za-z0-9_.@+-]{1,64}$/;
/** An Authorization header beyond this is garbage: "Basic " + base64 of a long user:password. */
const MAX_AUTHORIZATION_CHARS = 1_024;

/**
 * Failed attempts per client IP: a burst of 10 (a few typos, a misconfigured script's retries),
 * then one every 2 seconds. Loopback is not exempt: a local user guessing an rpcauth password
 * is exactly who this slows down.
 */
export const FAILED_AUTH_BURST = 10;
export const FAILED_AUTH_PER_SECOND = 0.5;

export interface RpcAuthEntry {
  user: string;
  salt: string;
  /** HMAC-SHA256(key = salt as UTF-8, message = password), 32 bytes. */
  hash: Uint8Array;
}

/** Parses `USER:SALT$HASH`; returns the reason when it is not one (for the usage error). */
export function parseRpcAuth(text: string): RpcAuthEntry | string {
  const colon = text.indexOf(":");
  const dollar = text.lastIndexOf("$");
  if (colon < 0 || dollar < colon) return "expected USER:SALT$HASH (made by timenode rpcauth)";
  const user = text.slice(0, colon);
  const salt = text.slice(colon + 1, dollar);
  const hashHex = text.slice(dollar + 1);
  if (!USER_RE.test(user)) return "user must be 1 to 64 of A-Z a-z 0-9 _ . @ + -";
  if (!/^[0-9a-fA-F]{2,128}$/.test(salt)) return "salt must be hex";
  if (!/^[0-9a-fA-F]{64}$/.test(hashHex)) return "hash must be 64 hex characters";
  return { user, salt: salt.toLowerCase(), hash: new Uint8Array(Buffer.from(hashHex, "hex")) };
}

export function rpcAuthHash(salt: string, password: string): Uint8Array {
  return new Uint8Array(createHmac("sha256", salt).update(password, "utf8").digest());
}

/**
 * A new `--rpc-auth` value for `user`: a fresh salt, and `password` or a generated one.
 * Throws a RangeError naming the problem when the user name is not allowed.
 */
export function makeRpcAuth(
  user: string,
  password?: string,
  random: (n: number) => Uint8Array = (n) => new Uint8Array(randomBytes(n)),
): { line: string; password: string } {
  if (!USER_RE.test(user)) {
    throw new RangeError("user must be 1 to 64 of A-Z a-z 0-9 _ . @ + -");
  }
  const pw = password ?? Buffer.from(random(PASSWORD_BYTES)).toString("base64url");
  const salt = Buffer.from(random(SALT_BYTES)).toString("hex");
  const hash = Buffer.from(rpcAuthHash(salt, pw)).toString("hex");
  return { line: `${user}:${salt}$${hash}`, password: pw };
}

export function newCookieSecret(): string {
  return randomBytes(COOKIE_SECRET_BYTES).toString("hex");
}

/** Decodes `Basic base64(user:password)`; null when the header is anything else. */
export function parseBasicAuth(
  header: string | null,
): { user: string; password: string } | null {
  if (header === null || header.length > MAX_AUTHORIZATION_CHARS) return null;
  const m = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header);
  if (!m) return null;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(m[1], "base64"));
  } catch {
    return null;
  }
  const colon = text.indexOf(":");
  if (colon < 0) return null;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** Checks credentials against the cookie and the rpcauth entries, in constant time. */
export class Authenticator {
  readonly #cookieDigest: Uint8Array | null;
  readonly #entries: readonly RpcAuthEntry[];

  constructor(opts: { cookieSecret: string | null; entries: readonly RpcAuthEntry[] }) {
    this.#cookieDigest = opts.cookieSecret === null ? null : sha256(opts.cookieSecret);
    this.#entries = opts.entries;
  }

  /** The authenticated user name, or null. */
  check(authorization: string | null): string | null {
    const creds = parseBasicAuth(authorization);
    if (creds === null) return null;
    let matched: string | null = null;
    // Every candidate is compared, so the time taken does not tell which user names exist.
    if (this.#cookieDigest !== null) {
      const ok = timingSafeEqual(sha256(creds.password), this.#cookieDigest);
      if (ok && creds.user === COOKIE_USER) matched = COOKIE_USER;
    }
    const userDigest = sha256(creds.user);
    for (const e of this.#entries) {
      const userOk = timingSafeEqual(userDigest, sha256(e.user));
      const passOk = timingSafeEqual(rpcAuthHash(e.salt, creds.password), e.hash);
      if (userOk && passOk && matched === null) matched = e.user;
    }
    return matched;
  }
}

function sha256(text: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(text, "utf8").digest());
}

/**
 * Failed attempts per client IP (a token bucket each). Once a client has spent its budget, its
 * further failures are answered much later (rpc/server.ts); a valid login costs nothing and is
 * never refused, so a stale script cannot lock the operator out.
 */
export class FailedAuthThrottle {
  readonly #limiter = new PerKeyLimiter({
    ratePerSec: FAILED_AUTH_PER_SECOND,
    burst: FAILED_AUTH_BURST,
    exemptLoopback: false,
    maxKeys: 1_024,
  });

  /** True while `ip` has no budget left for another failure. */
  blocked(ip: string, now: number): boolean {
    return this.#limiter.available(ip, now) < 1;
  }

  recordFailure(ip: string, now: number): void {
    this.#limiter.allow(ip, now);
  }
}

/** Where the cookie lives for a data dir. */
export function cookiePath(dataDir: string): string {
  return dataDir.endsWith("/") ? dataDir + COOKIE_FILE : `${dataDir}/${COOKIE_FILE}`;
}

/**
 * Writes a fresh cookie (mode 0600 from creation on, via a temporary file renamed into place,
 * so no reader ever sees a partial or world-readable file). Returns the secret and a remover
 * that deletes the file only if it still holds this secret.
 */
export async function writeCookie(
  dataDir: string,
): Promise<{ secret: string; path: string; remove: () => Promise<void> }> {
  const secret = newCookieSecret();
  const path = cookiePath(dataDir);
  const tmp = `${path}.tmp`;
  await Deno.remove(tmp).catch(() => {});
  await Deno.writeTextFile(tmp, `${COOKIE_USER}:${secret}\n`, { mode: 0o600, createNew: true });
  await Deno.rename(tmp, path);
  return {
    secret,
    path,
    remove: async () => {
      try {
        const current = await Deno.readTextFile(path);
        if (current.trim() === `${COOKIE_USER}:${secret}`) await Deno.remove(path);
      } catch {
        // Already gone: nothing to remove.
      }
    },
  };
}

/** Reads a cookie file as credentials; null when it is absent or not a cookie. */
export async function readCookie(
  path: string,
): Promise<{ user: string; password: string } | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    return null;
  }
  const line = text.trim();
  const colon = line.indexOf(":");
  if (colon <= 0 || line.length > 200) return null;
  return { user: line.slice(0, colon), password: line.slice(colon + 1) };
}
