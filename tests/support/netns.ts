/**
 * Test hosts with real, distinct IP addresses: network namespaces joined by a bridge in the
 * root namespace, so node processes see each other's true IPs (no loopback exception) and the
 * test process can reach every host. Needs root and iproute2, as CI has.
 *
 * Must never: touch any address outside the private /24 it creates, or outlive the test
 * (`destroy` removes the namespaces, their veths and the bridge).
 */

async function ip(...args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

export interface TestHosts {
  /** Namespace name and IP of each host, in order. */
  hosts: { netns: string; ip: string }[];
  /** The root namespace's address on the bridge: where the test process's sockets come from. */
  bridgeIp: string;
  destroy(): Promise<void>;
}

/** Creates `count` hosts 10.210.S.1, .2, ... behind a bridge at 10.210.S.254. */
export async function createTestHosts(count: number): Promise<TestHosts> {
  const tag = Math.floor(Math.random() * 0xffff).toString(16).padStart(4, "0");
  const subnet = `10.210.${1 + Math.floor(Math.random() * 250)}`;
  const bridge = `tnbr${tag}`;
  const hosts: { netns: string; ip: string }[] = [];
  const destroy = async () => {
    for (const h of hosts) await ip("netns", "del", h.netns).catch(() => {});
    await ip("link", "del", bridge).catch(() => {});
  };
  try {
    await ip("link", "add", bridge, "type", "bridge");
    await ip("addr", "add", `${subnet}.254/24`, "dev", bridge);
    await ip("link", "set", bridge, "up");
    for (let i = 0; i < count; i++) {
      const netns = `tn${tag}h${i}`;
      const veth = `tnv${tag}h${i}`;
      const hostIp = `${subnet}.${i + 1}`;
      await ip("netns", "add", netns);
      hosts.push({ netns, ip: hostIp });
      await ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns);
      await ip("link", "set", veth, "master", bridge, "up");
      await ip("-n", netns, "addr", "add", `${hostIp}/24`, "dev", "eth0");
      await ip("-n", netns, "link", "set", "eth0", "up");
      await ip("-n", netns, "link", "set", "lo", "up");
    }
  } catch (e) {
    await destroy();
    throw e;
  }
  return { hosts, bridgeIp: `${subnet}.254`, destroy };
}
