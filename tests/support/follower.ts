/**
 * Nodes that join a test devnet from outside its manifest (followers, newcomers, honest hosts
 * in a network namespace): the devnet's genesis, one port pair, a temp data dir each.
 *
 * Must never: start the node (the test decides when), or forget a data dir (each is pushed to
 * `dirs`, which the test removes).
 */
import { type NodeOptions, NodeProcess, tempDir } from "./cluster.ts";

export type FollowerOptions = Omit<NodeOptions, "name" | "dataDir" | "p2pPort" | "rpcPort">;

/** Makes followers on `port` (p2p) and `port + 1` (RPC), with `genesis` and info logs. */
export function followerMaker(
  genesis: string,
  port: number,
  dirs: string[],
): (name: string, opts: FollowerOptions) => Promise<NodeProcess> {
  return async (name, opts) => {
    const dataDir = await tempDir(name);
    dirs.push(dataDir);
    return new NodeProcess({
      name,
      dataDir,
      p2pPort: port,
      rpcPort: port + 1,
      genesis,
      logLevel: "info",
      ...opts,
    });
  };
}
