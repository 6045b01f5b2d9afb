/*
 * my-script: one line on what it does.
 *
 * Copy this file to scripts/c/NAME.c and build it with `make guests`
 * (or `guest-sdk/build-guest c scripts/c/NAME.c`).
 */
#include "ovsrun.h"

static const char USAGE[] =
    "Usage: my-script BRIDGE CONTAINER [--mtu=N]\n"
    "\n"
    "Connects CONTAINER's eth1 to BRIDGE (created when missing).";

static const char *const OPTIONS[] = {"mtu", NULL};

static bool my_script(const ovsrun_args *args, ovsrun_error *err) {
    /* Check every argument first: a bad value fails before any change. */
    const char *pos[2], *bridge, *container;
    uint32_t mtu = 0;
    bool has_mtu;
    OVSRUN_TRY(ovsrun_args_exact(args, 2, (const char *[]){"BRIDGE", "CONTAINER"}, pos, err));
    OVSRUN_TRY(ovsrun_arg("BRIDGE", pos[0], ovsrun_parse_ifname, &bridge, err));
    OVSRUN_TRY(ovsrun_arg("CONTAINER", pos[1], ovsrun_parse_container, &container, err));
    OVSRUN_TRY(ovsrun_opt(args, "mtu", ovsrun_parse_mtu, &mtu, &has_mtu, err));

    OVSRUN_TRY(ovsrun_bridge_create(bridge, OVSRUN_DATAPATH_HOST_DEFAULT, true, NULL, err));
    ovsrun_port port;
    OVSRUN_TRY(ovsrun_port_add(bridge, ovsrun_container(container), "eth1", &(ovsrun_port_options){.mtu = mtu},
                               &port, err));
    ovsrun_info("%s is on %s through port %s", container, bridge, port.name);
    if (port.error)
        return ovsrun_fail(err, "ovs-vswitchd could not attach %s: %s", port.name, port.error);
    return true;
}

OVSRUN_SCRIPT(my_script, USAGE, OPTIONS)
