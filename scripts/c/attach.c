/*
 * attach: connects a Docker container to an Open vSwitch bridge through a
 * veth pair, with exactly ovs-docker add-port's arguments plus --vlan.
 *
 * The C twin of scripts/attach (Rust): same arguments, same checks, same
 * calls in the same order. Every argument is checked before the first
 * capability call, so a typo never leaves a half-made port behind.
 */
#include <sys/socket.h>

#include "ovsrun.h"

static const char USAGE[] =
    "Usage: attach BRIDGE INTERFACE CONTAINER [--ipaddress=CIDR] [--macaddress=MAC]\n"
    "              [--gateway=IP] [--mtu=N] [--vlan=TAG]\n"
    "\n"
    "Adds INTERFACE inside CONTAINER and connects it to BRIDGE through a veth\n"
    "pair, like ovs-docker add-port. BRIDGE is created when missing.\n"
    "\n"
    "Options (also accepted as --option VALUE):\n"
    "  --ipaddress=CIDR   address for INTERFACE, e.g. 10.1.0.2/24 or fd00::2/64\n"
    "  --macaddress=MAC   MAC address for INTERFACE, e.g. 02:42:ac:11:00:02\n"
    "  --gateway=IP       add a default route via IP through INTERFACE\n"
    "  --mtu=N            MTU of both veth ends, 68-65535 [default: on a bridge\n"
    "                     with tunnels or OVN, its inner MTU (underlay minus 50\n"
    "                     VXLAN/Geneve, 38 GRE, 58 OVN); else the kernel's]\n"
    "  --vlan=TAG         access VLAN tag of the port, 1-4094";

static const char *const OPTIONS[] = {"ipaddress", "macaddress", "gateway", "mtu", "vlan", NULL};

static bool attach(const ovsrun_args *args, ovsrun_error *err) {
    const char *pos[3], *bridge, *iface, *container;
    OVSRUN_TRY(ovsrun_args_exact(args, 3, (const char *[]){"BRIDGE", "INTERFACE", "CONTAINER"}, pos, err));
    OVSRUN_TRY(ovsrun_arg("BRIDGE", pos[0], ovsrun_parse_ifname, &bridge, err));
    OVSRUN_TRY(ovsrun_arg("INTERFACE", pos[1], ovsrun_parse_ifname, &iface, err));
    OVSRUN_TRY(ovsrun_arg("CONTAINER", pos[2], ovsrun_parse_container, &container, err));
    ovsrun_cidr address;
    ovsrun_mac mac;
    ovsrun_ip gateway;
    uint32_t mtu = 0;
    uint16_t vlan = 0;
    bool has_address, has_mac, has_gateway, has_mtu, has_vlan;
    OVSRUN_TRY(ovsrun_opt(args, "ipaddress", ovsrun_parse_cidr, &address, &has_address, err));
    OVSRUN_TRY(ovsrun_opt(args, "macaddress", ovsrun_parse_mac, &mac, &has_mac, err));
    OVSRUN_TRY(ovsrun_opt(args, "gateway", ovsrun_parse_ip, &gateway, &has_gateway, err));
    OVSRUN_TRY(ovsrun_opt(args, "mtu", ovsrun_parse_mtu, &mtu, &has_mtu, err));
    OVSRUN_TRY(ovsrun_opt(args, "vlan", ovsrun_parse_vlan, &vlan, &has_vlan, err));
    if (has_address && has_gateway && address.ip.family != gateway.family)
        return ovsrun_invalid(err, "--gateway=%s and --ipaddress=%s are of different address families",
                              ovsrun_ip_str(&gateway).s, ovsrun_cidr_str(&address).s);

    /* A read, done before the first change: a missing container leaves
     * nothing behind (not even a new bridge). */
    ovsrun_container_info found;
    OVSRUN_TRY(ovsrun_container_lookup(container, &found, err));
    if (!found.running)
        return ovsrun_fail(err, "container '%s' is not running; start it first", container);

    bool created;
    OVSRUN_TRY(ovsrun_bridge_create(bridge, OVSRUN_DATAPATH_HOST_DEFAULT, true, &created, err));
    if (created)
        ovsrun_info("created bridge %s", bridge);
    else
        ovsrun_info("bridge %s exists", bridge);

    OVSRUN_TRY(ovsrun_mtu_for(bridge, has_mtu ? mtu : 0, &mtu, err));
    ovsrun_target target = ovsrun_container(container);
    ovsrun_port_options options = {.mtu = mtu, .mac = has_mac ? &mac : NULL, .vlan = vlan};
    ovsrun_port port;
    /* The address and default route are made with the veth (one call, one
     * OVS transaction); the inner end is left up, as ovs-docker leaves it. */
    OVSRUN_TRY(ovsrun_port_attach(bridge, target, iface, &options, has_address ? &address : NULL,
                                  has_gateway ? &gateway : NULL, &port, err));
    ovsrun_info("added port %s on %s for %s in " OVSRUN_TARGET_FMT, port.name, bridge, iface,
                OVSRUN_TARGET_ARGS(target));
    if (has_address)
        ovsrun_info("set address %s on %s in " OVSRUN_TARGET_FMT, ovsrun_cidr_str(&address).s, iface,
                    OVSRUN_TARGET_ARGS(target));
    if (has_gateway)
        ovsrun_info("set default route via %s dev %s in " OVSRUN_TARGET_FMT, ovsrun_ip_str(&gateway).s, iface,
                    OVSRUN_TARGET_ARGS(target));
    return true;
}

OVSRUN_SCRIPT(attach, USAGE, OPTIONS)
