/**
 * Test hosts with real, distinct IP addresses: network namespaces joined by a bridge in the
 * root namespace, so node processes see each other's true IPs (no loopback exception) and the
 * test process can reach every host. Needs root and iproute2, as CI has.
 *
 * Must never: touch any address outside the private /24 (and unique-local /48) it creates, or
 * outlive the test
 * (`destroy` removes the namespaces, their veths and the bridge).
 */

async function ip(...args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

export interface TestHost {
  netns: string;
  ip: string;
  /** IPv6 addresses of this host, all in its own /64 (empty unless asked for). */
  ip6s: string[];
}

export interface TestHosts {
  /** Namespace name and IPs of each host, in order. */
  hosts: TestHost[];
  /** The root namespace's address on the bridge: where the test process's sockets come from. */
  bridgeIp: string;
  /** The bridge's IPv6 address (in a /64 of its own), when hosts have IPv6 addresses. */
  bridgeIp6: string;
  destroy(): Promise<void>;
}

export interface TestHostOptions {
  /**
   * IPv6 addresses of each host (a number for all, or one per host), in a unique-local /48
   * (fd00::/8) on the bridge: host i's are <prefix>:<i+1>::1, ::2, ... (one /64 per host), the
   * bridge's <prefix>::fe. 0: IPv4 only.
   */
  ipv6PerHost?: number | number[];
}

/**
 * Creates `count` hosts 10.210.S.1, .2, ... behind a bridge at 10.210.S.254, and optionally
 * IPv6 addresses (on-link across the whole /48, so hosts in different /64s reach each other).
 */
export async function createTestHosts(
  count: number,
  opts: TestHostOptions = {},
): Promise<TestHosts> {
  const tag = Math.floor(Math.random() * 0xffff).toString(16).padStart(4, "0");
  const subnet = `10.210.${1 + Math.floor(Math.random() * 250)}`;
  const prefix6 = `fd42:${tag}:${Math.floor(Math.random() * 0xffff).toString(16)}`;
  const v6Count = (i: number) =>
    typeof opts.ipv6PerHost === "number" ? opts.ipv6PerHost : opts.ipv6PerHost?.[i] ?? 0;
  const ipv6 = Array.from({ length: count }, (_, i) => v6Count(i)).some((n) => n > 0);
  const bridge = `tnbr${tag}`;
  const hosts: TestHost[] = [];
  const destroy = async () => {
    for (const h of hosts) await ip("netns", "del", h.netns).catch(() => {});
    await ip("link", "del", bridge).catch(() => {});
  };
  try {
    await ip("link", "add", bridge, "type", "bridge");
    await ip("addr", "add", `${subnet}.254/24`, "dev", bridge);
    // nodad: an address still in duplicate detection cannot be bound for about a second.
    if (ipv6) await ip("-6", "addr", "add", `${prefix6}::fe/48`, "dev", bridge, "nodad");
    await ip("link", "set", bridge, "up");
    for (let i = 0; i < count; i++) {
      const netns = `tn${tag}h${i}`;
      const veth = `tnv${tag}h${i}`;
      const hostIp = `${subnet}.${i + 1}`;
      await ip("netns", "add", netns);
      const ip6s = Array.from(
        { length: v6Count(i) },
        (_, k) => `${prefix6}:${(i + 1).toString(16)}::${(k + 1).toString(16)}`,
      );
      hosts.push({ netns, ip: hostIp, ip6s });
      await ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns);
      await ip("link", "set", veth, "master", bridge, "up");
      await ip("-n", netns, "addr", "add", `${hostIp}/24`, "dev", "eth0");
      for (const a of ip6s) {
        await ip("-n", netns, "-6", "addr", "add", `${a}/48`, "dev", "eth0", "nodad");
      }
      await ip("-n", netns, "link", "set", "eth0", "up");
      await ip("-n", netns, "link", "set", "lo", "up");
    }
  } catch (e) {
    await destroy();
    throw e;
  }
  return { hosts, bridgeIp: `${subnet}.254`, bridgeIp6: ipv6 ? `${prefix6}::fe` : "", destroy };
}
