/*
 * seed-demo: the classic "container on an OVS bridge" tutorial in one
 * script, the C twin of scripts/seed-demo (Rust). It creates a bridge, gives
 * the host an address on the bridge's internal port, plugs a container in
 * with an address in the same subnet and a default route via the host, then
 * pings the host from the container.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ovsrun.h"

static const char USAGE[] =
    "Usage: seed-demo [--bridge=br-demo] [--container=demo] [--subnet=10.10.0.0/24]\n"
    "                 [--interface=eth0] [--mtu=1500]\n"
    "\n"
    "Creates BRIDGE when missing and puts the subnet's first address on its\n"
    "internal port (host side), connects CONTAINER's INTERFACE to it with the\n"
    "second address and a default route via the first, then pings the host from\n"
    "the container (3 requests), sends 1 MiB over TCP from the container to the\n"
    "host, and prints a report. Fails when a ping or the data does not get through.\n"
    "\n"
    "Options (defaults shown above; IPv6 subnets work too):\n"
    "  --bridge=NAME      bridge to use or create\n"
    "  --container=NAME   running container to connect\n"
    "  --subnet=CIDR      subnet for the host (.1) and the container (.2)\n"
    "  --interface=NAME   interface name inside the container\n"
    "  --mtu=N            MTU of the container's veth pair, 68-65535";

static const char *const OPTIONS[] = {"bridge", "container", "subnet", "interface", "mtu", NULL};

enum { PING_COUNT = 3, PING_TIMEOUT_MS = 1000 };

static bool same_ip(const ovsrun_ip *a, const ovsrun_ip *b) {
    return a->family == b->family && memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16) == 0;
}

/* The first address of `subnet` from .2 on that no container on `bridge` has. */
static bool free_address(const char *bridge, const ovsrun_cidr *subnet, ovsrun_cidr *out, ovsrun_error *err) {
    enum { MAX_USED = 1024 };
    static ovsrun_cidr used[MAX_USED];
    size_t n_used;
    OVSRUN_TRY(ovsrun_bridge_container_addresses(bridge, used, MAX_USED, &n_used, err));
    for (uint64_t n = 2;; n++) {
        ovsrun_error none = {0};
        if (!ovsrun_cidr_host(subnet, n, out, &none)) {
            free(none.message);
            ovsrun_cidr net = ovsrun_cidr_network(subnet);
            return ovsrun_fail(err, "no free address left in %s on bridge %s", ovsrun_cidr_str(&net).s, bridge);
        }
        bool taken = false;
        for (size_t i = 0; i < n_used && !taken; i++)
            taken = same_ip(&used[i].ip, &out->ip);
        if (!taken)
            return true;
    }
}

static bool seed_demo(const ovsrun_args *args, ovsrun_error *err) {
    const char *bridge, *container, *iface;
    ovsrun_cidr subnet, host_addr, container_addr;
    uint32_t mtu;
    OVSRUN_TRY(ovsrun_args_exact(args, 0, NULL, NULL, err));
    OVSRUN_TRY(ovsrun_opt_or(args, "bridge", "br-demo", ovsrun_parse_ifname, &bridge, err));
    OVSRUN_TRY(ovsrun_opt_or(args, "container", "demo", ovsrun_parse_container, &container, err));
    OVSRUN_TRY(ovsrun_opt_or(args, "subnet", "10.10.0.0/24", ovsrun_parse_cidr, &subnet, err));
    OVSRUN_TRY(ovsrun_opt_or(args, "interface", "eth0", ovsrun_parse_ifname, &iface, err));
    OVSRUN_TRY(ovsrun_opt_or(args, "mtu", "1500", ovsrun_parse_mtu, &mtu, err));
    /* Checked before any change; the address actually used is the first
     * free one from .2 on (see free_address). */
    if (!ovsrun_cidr_host(&subnet, 1, &host_addr, err) || !ovsrun_cidr_host(&subnet, 2, &container_addr, err))
        return ovsrun_context(err, "--subnet");

    /* A read first: a missing container stops the demo before any change. */
    ovsrun_container_info found;
    OVSRUN_TRY(ovsrun_container_lookup(container, &found, err));
    if (!found.running)
        return ovsrun_fail(err, "container '%s' is not running", container);

    bool created;
    OVSRUN_TRY(ovsrun_bridge_create(bridge, OVSRUN_DATAPATH_HOST_DEFAULT, true, &created, err));
    ovsrun_info("bridge %s: %s", bridge, created ? "created" : "exists");

    /* The bridge's internal port carries its name: the host's leg of the demo. */
    ovsrun_target host = ovsrun_host();
    OVSRUN_TRY(ovsrun_link_set_address(host, bridge, &host_addr, NULL, err));
    OVSRUN_TRY(ovsrun_link_set_up(host, bridge, err));
    ovsrun_info("host: %s on %s, up", ovsrun_cidr_str(&host_addr).s, bridge);

    /* Run again for another container, the demo must not hand out an
     * address a container on the bridge already has. */
    OVSRUN_TRY(free_address(bridge, &subnet, &container_addr, err));
    ovsrun_target target = ovsrun_container(container);
    ovsrun_port port;
    OVSRUN_TRY(ovsrun_port_add(bridge, target, iface, &(ovsrun_port_options){.mtu = mtu}, &port, err));
    ovsrun_info(OVSRUN_TARGET_FMT ": %s on %s through port %s", OVSRUN_TARGET_ARGS(target), iface, bridge,
                port.name);
    OVSRUN_TRY(ovsrun_link_set_address(target, iface, &container_addr, NULL, err));
    const ovsrun_ip *gateway = &host_addr.ip;
    OVSRUN_TRY(ovsrun_route_add(target, &(ovsrun_route){.via = gateway, .dev = iface}, NULL, err));
    ovsrun_info(OVSRUN_TARGET_FMT ": %s on %s, default via %s", OVSRUN_TARGET_ARGS(target),
                ovsrun_cidr_str(&container_addr).s, iface, ovsrun_ip_str(gateway).s);

    ovsrun_ping_stats stats;
    OVSRUN_TRY(ovsrun_ping(target, gateway, PING_COUNT, PING_TIMEOUT_MS, &stats, err));
    /* A ping alone does not show that data moves (TCP checksums, MTU): 1 MiB does. */
    ovsrun_transfer_stats tcp;
    OVSRUN_TRY(ovsrun_tcp_check(target, host, gateway, 1 << 20, 10000, &tcp, err));
    printf("seed-demo report\n");
    printf("  bridge     %s (%s)\n", bridge, created ? "created" : "existed");
    printf("  host       %s on %s\n", ovsrun_cidr_str(&host_addr).s, bridge);
    printf("  container  %s %s %s mtu %u, port %s\n", container, iface, ovsrun_cidr_str(&container_addr).s, mtu,
           port.name);
    printf("  route      default via %s dev %s\n", ovsrun_ip_str(gateway).s, iface);
    printf("  ping       %s -> %s: %s\n", container, ovsrun_ip_str(gateway).s, ovsrun_ping_str(&stats).s);
    printf("  tcp        %s -> %s: %s\n", container, ovsrun_ip_str(gateway).s, ovsrun_transfer_str(&tcp).s);
    fflush(stdout);
    if (stats.received == 0)
        return ovsrun_fail(err, "no reply from %s to %u ping(s) from container %s", ovsrun_ip_str(gateway).s,
                           stats.sent, container);
    if (tcp.received != tcp.sent)
        return ovsrun_fail(err, "TCP from container %s to %s: only %s", container, ovsrun_ip_str(gateway).s,
                           ovsrun_transfer_str(&tcp).s);
    return true;
}

OVSRUN_SCRIPT(seed_demo, USAGE, OPTIONS)
