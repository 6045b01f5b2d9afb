// detach: removes the port that connects a container's interface to a
// bridge, like ovs-docker del-port, but idempotent: when there is nothing to
// remove (already detached, or the bridge is gone) it succeeds.
//
// The JavaScript twin of scripts/detach (Rust). It deliberately does not
// look the container up: the container may be gone already, and the host
// finds its ports by their external ids.

import { script, parse, OvsRunError, Target, info, ports, warn } from "../../guest-sdk/js/ovs-run.js";

const USAGE = `Usage: detach BRIDGE INTERFACE CONTAINER

Removes the port that connects INTERFACE of CONTAINER to BRIDGE (and its
veth pair). Succeeds when there is nothing to remove; CONTAINER need not
exist any more.`;

function main(args) {
  const [bridgeArg, ifaceArg, containerArg] = args.exact("BRIDGE", "INTERFACE", "CONTAINER");
  const bridge = bridgeArg.parse(parse.ifname);
  const iface = ifaceArg.parse(parse.ifname);
  const container = containerArg.parse(parse.containerName);

  const target = Target.container(container);
  try {
    if (ports.delete(bridge, target, iface)) info(`removed the port for ${iface} in ${target} from ${bridge}`);
    else info(`no port for ${iface} in ${target} on ${bridge}; nothing to remove`);
  } catch (e) {
    // del-port tolerates a missing container, so not-found is the bridge:
    // with no bridge there is no port either, which is what was asked.
    if (!(e instanceof OvsRunError && e.isNotFound)) throw e;
    warn(`${e}; nothing to remove`);
  }
}

export const run = script(main, { usage: USAGE });
