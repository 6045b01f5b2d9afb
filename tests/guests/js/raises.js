// Test guest: a script with a bug. It makes one change, then an exception
// escapes main; the user must see the exception's text (exit 1) and the
// change must be rolled back.

import { script, parse, bridges } from "../../../guest-sdk/js/ovs-run.js";

function main(args) {
  const [bridge] = args.exact("BRIDGE");
  bridges.create(bridge.parse(parse.ifname));
  const settings = { mtu: 1500 };
  settings.vlan.toString(); // TypeError
}

export const run = script(main, { usage: "Usage: raises BRIDGE" });
