// my-script: one line on what it does.
//
// Copy this file to scripts/js/NAME.js and build it with `make guests`
// (or `guest-sdk/build-guest js scripts/js/NAME.js`).

import { script, parse, OvsRunError, Target, bridges, info, ports } from "../../guest-sdk/js/ovs-run.js";

const USAGE = `Usage: my-script BRIDGE CONTAINER [--mtu=N]

Connects CONTAINER's eth1 to BRIDGE (created when missing).`;

function main(args) {
  // Check every argument first: a bad value fails before any change.
  const [bridgeArg, containerArg] = args.exact("BRIDGE", "CONTAINER");
  const bridge = bridgeArg.parse(parse.ifname);
  const container = containerArg.parse(parse.containerName);
  const mtu = args.opt("mtu", parse.mtu);

  bridges.create(bridge, "host-default", true);
  const port = ports.add(bridge, Target.container(container), "eth1", { mtu });
  info(`${container} is on ${bridge} through port ${port.name}`);
  if (port.error) throw new OvsRunError(`ovs-vswitchd could not attach ${port.name}: ${port.error}`);
}

export const run = script(main, { usage: USAGE, options: ["mtu"] });
