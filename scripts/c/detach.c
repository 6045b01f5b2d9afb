/*
 * detach: removes the port that connects a container's interface to a
 * bridge, like ovs-docker del-port, but idempotent: when there is nothing to
 * remove (already detached, or the bridge is gone) it succeeds.
 *
 * The C twin of scripts/detach (Rust). It deliberately does not look the
 * container up: the container may be gone already, and the host finds its
 * ports by their external ids.
 */
#include <stdlib.h>

#include "ovsrun.h"

static const char USAGE[] =
    "Usage: detach BRIDGE INTERFACE CONTAINER\n"
    "\n"
    "Removes the port that connects INTERFACE of CONTAINER to BRIDGE (and its\n"
    "veth pair). Succeeds when there is nothing to remove; CONTAINER need not\n"
    "exist any more.";

static const char *const OPTIONS[] = {NULL};

static bool detach(const ovsrun_args *args, ovsrun_error *err) {
    const char *pos[3], *bridge, *iface, *container;
    OVSRUN_TRY(ovsrun_args_exact(args, 3, (const char *[]){"BRIDGE", "INTERFACE", "CONTAINER"}, pos, err));
    OVSRUN_TRY(ovsrun_arg("BRIDGE", pos[0], ovsrun_parse_ifname, &bridge, err));
    OVSRUN_TRY(ovsrun_arg("INTERFACE", pos[1], ovsrun_parse_ifname, &iface, err));
    OVSRUN_TRY(ovsrun_arg("CONTAINER", pos[2], ovsrun_parse_container, &container, err));

    ovsrun_target target = ovsrun_container(container);
    bool removed;
    if (ovsrun_port_del(bridge, target, iface, &removed, err)) {
        if (removed)
            ovsrun_info("removed the port for %s in " OVSRUN_TARGET_FMT " from %s", iface,
                        OVSRUN_TARGET_ARGS(target), bridge);
        else
            ovsrun_info("no port for %s in " OVSRUN_TARGET_FMT " on %s; nothing to remove", iface,
                        OVSRUN_TARGET_ARGS(target), bridge);
        return true;
    }
    /* del-port tolerates a missing container, so not-found is the bridge:
     * with no bridge there is no port either, which is what was asked. */
    if (err->kind != OVSRUN_ERR_NOT_FOUND)
        return false;
    ovsrun_warn("not found: %s; nothing to remove", err->message);
    free(err->message);
    err->message = NULL;
    return true;
}

OVSRUN_SCRIPT(detach, USAGE, OPTIONS)
