/*
 * Write ovs-run network scripts in C.
 *
 * A script is a WebAssembly component built from C with clang (wasm32-wasi)
 * and the bindings wit-bindgen generates from the shared WIT world
 * (wit/ovs-run.wit, world `script`; guest-sdk/build-guest does all of it).
 * This header is the C side of the Rust SDK (guest-sdk/src): the same
 * argument rules, the same checks of network values before anything reaches
 * the host, the same error texts.
 *
 * Conventions: every function that can fail returns `bool` (true: success)
 * and fills `*err`; OVSRUN_TRY(call) returns false from the calling function
 * when `call` fails, so errors travel up like `?` in Rust. Strings the SDK
 * hands out live until the run ends. A script:
 *
 *   #include "ovsrun.h"
 *
 *   static const char USAGE[] = "Usage: hello BRIDGE\nCreates BRIDGE.";
 *   static const char *const OPTIONS[] = {NULL};
 *
 *   static bool hello(const ovsrun_args *args, ovsrun_error *err) {
 *       const char *pos[1], *bridge;
 *       OVSRUN_TRY(ovsrun_args_exact(args, 1, (const char *[]){"BRIDGE"}, pos, err));
 *       OVSRUN_TRY(ovsrun_arg("BRIDGE", pos[0], ovsrun_parse_ifname, &bridge, err));
 *       OVSRUN_TRY(ovsrun_bridge_create(bridge, OVSRUN_DATAPATH_HOST_DEFAULT, true, NULL, err));
 *       ovsrun_info("bridge %s is there", bridge);
 *       return true;
 *   }
 *
 *   OVSRUN_SCRIPT(hello, USAGE, OPTIONS)
 *
 * Everything the WIT offers is also reachable through the generated
 * bindings (script.h) directly; this SDK covers what scripts commonly use.
 */
#ifndef OVSRUN_H
#define OVSRUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "script.h"

/* ---- Errors ------------------------------------------------------------ */

typedef enum {
    OVSRUN_ERR_SCRIPT,           /* the script's own reason */
    OVSRUN_ERR_INVALID,          /* a value the script rejected before any call */
    OVSRUN_ERR_INVALID_ARGUMENT, /* the host's error cases, from here on */
    OVSRUN_ERR_NOT_FOUND,
    OVSRUN_ERR_ALREADY_EXISTS,
    OVSRUN_ERR_DENIED,
    OVSRUN_ERR_FAILED,
} ovsrun_error_kind;

/* Why a script (or one step of it) failed; `message` is what the user sees
 * (host errors prefixed with their kind, as the Rust SDK shows them). */
typedef struct {
    ovsrun_error_kind kind;
    char *message;
} ovsrun_error;

#define OVSRUN_TRY(call)  \
    do {                  \
        if (!(call))      \
            return false; \
    } while (0)

/* Set *err to a script error (printf-style); returns false. */
bool ovsrun_fail(ovsrun_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Set *err to an invalid-value error (printf-style); returns false. */
bool ovsrun_invalid(ovsrun_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix err's message with `what: `, keeping its kind; returns false. */
bool ovsrun_context(ovsrun_error *err, const char *what);

/* ---- Network values ----------------------------------------------------- */

typedef struct {
    int family;         /* AF_INET or AF_INET6 */
    uint8_t addr[16];   /* network order; IPv4 uses the first 4 bytes */
} ovsrun_ip;

typedef struct {
    ovsrun_ip ip;
    uint8_t prefix;
} ovsrun_cidr;

typedef struct {
    char text[18];      /* lower-case, 02:42:ac:11:00:02 */
} ovsrun_mac;

/* Text buffers big enough for any address / CIDR. */
typedef struct { char s[48]; } ovsrun_ip_text;
typedef struct { char s[52]; } ovsrun_cidr_text;

ovsrun_ip_text ovsrun_ip_str(const ovsrun_ip *ip);
ovsrun_cidr_text ovsrun_cidr_str(const ovsrun_cidr *cidr);
/* The network address with the same prefix (10.1.0.7/24 -> 10.1.0.0/24). */
ovsrun_cidr ovsrun_cidr_network(const ovsrun_cidr *cidr);
/* The subnet's n-th host address with the same prefix (10.1.0.0/24: 1 -> 10.1.0.1/24). */
bool ovsrun_cidr_host(const ovsrun_cidr *cidr, uint64_t n, ovsrun_cidr *out, ovsrun_error *err);

/* Parsers: `value` -> `*out` (type in the comment), or an invalid-value error.
 * Use them through ovsrun_arg / ovsrun_opt, which name the argument in errors. */
typedef bool (*ovsrun_parser)(const char *value, void *out, ovsrun_error *err);
bool ovsrun_parse_ifname(const char *value, void *out, ovsrun_error *err);    /* const char * */
bool ovsrun_parse_container(const char *value, void *out, ovsrun_error *err); /* const char * */
bool ovsrun_parse_ip(const char *value, void *out, ovsrun_error *err);        /* ovsrun_ip */
bool ovsrun_parse_cidr(const char *value, void *out, ovsrun_error *err);      /* ovsrun_cidr */
bool ovsrun_parse_mac(const char *value, void *out, ovsrun_error *err);       /* ovsrun_mac */
bool ovsrun_parse_mtu(const char *value, void *out, ovsrun_error *err);       /* uint32_t */
bool ovsrun_parse_vlan(const char *value, void *out, ovsrun_error *err);      /* uint16_t */

/* ---- Command lines: ovs-docker style, as the Rust SDK's Args ------------- */

typedef struct ovsrun_args ovsrun_args;

/* Exactly n positional arguments, named for errors, into pos[0..n). */
bool ovsrun_args_exact(const ovsrun_args *args, size_t n, const char *const names[], const char *pos[],
                       ovsrun_error *err);
/* The raw value of option `key` (without "--"), or NULL. An undeclared key is a bug: the script traps. */
const char *ovsrun_args_get(const ovsrun_args *args, const char *key);
/* parse(value) into *out; errors start with `name: ` (e.g. "BRIDGE: "). */
bool ovsrun_arg(const char *name, const char *value, ovsrun_parser parse, void *out, ovsrun_error *err);
/* Option `key` parsed into *out when given; *given tells whether it was. */
bool ovsrun_opt(const ovsrun_args *args, const char *key, ovsrun_parser parse, void *out, bool *given,
                ovsrun_error *err);
/* Option `key`, or `fallback`, parsed into *out. */
bool ovsrun_opt_or(const ovsrun_args *args, const char *key, const char *fallback, ovsrun_parser parse,
                   void *out, ovsrun_error *err);

/* ---- Targets and capabilities ------------------------------------------- */

typedef struct {
    uint8_t kind;       /* OVS_RUN_NET_TYPES_TARGET_{HOST,CONTAINER,NETNS} */
    const char *name;   /* container or netns name; NULL for the host */
} ovsrun_target;

ovsrun_target ovsrun_host(void);
ovsrun_target ovsrun_container(const char *name);
ovsrun_target ovsrun_netns(const char *name);
/* printf a target as "host", "container web", "netns ns1": "%s%s", OVSRUN_TARGET_ARGS(t) */
#define OVSRUN_TARGET_FMT "%s%s"
#define OVSRUN_TARGET_ARGS(t)                                                          \
    ((t).kind == OVS_RUN_NET_TYPES_TARGET_HOST        ? "host"                          \
     : (t).kind == OVS_RUN_NET_TYPES_TARGET_CONTAINER ? "container "                    \
                                                       : "netns "),                     \
        ((t).kind == OVS_RUN_NET_TYPES_TARGET_HOST ? "" : (t).name)

typedef enum {
    OVSRUN_DATAPATH_HOST_DEFAULT = OVS_RUN_NET_BRIDGES_DATAPATH_HOST_DEFAULT,
    OVSRUN_DATAPATH_SYSTEM = OVS_RUN_NET_BRIDGES_DATAPATH_SYSTEM,
    OVSRUN_DATAPATH_NETDEV = OVS_RUN_NET_BRIDGES_DATAPATH_NETDEV,
} ovsrun_datapath;

/* `created` (may be NULL): false when the bridge existed and may_exist was set. */
bool ovsrun_bridge_create(const char *name, ovsrun_datapath datapath, bool may_exist, bool *created,
                          ovsrun_error *err);
bool ovsrun_bridge_delete(const char *name, bool if_exists, bool *deleted, ovsrun_error *err);

/* Unset fields: mtu 0, mac NULL, vlan 0. */
typedef struct {
    uint32_t mtu;
    const ovsrun_mac *mac;
    uint16_t vlan;
} ovsrun_port_options;

typedef struct {
    char *name;         /* OVS port (host-side interface) name */
    char *error;        /* the Interface's error column, or NULL */
    int32_t ofport;     /* -1 until ovs-vswitchd assigns one */
} ovsrun_port;

/* The MTU for a new port on `bridge`: `given` when non-zero (the user gave
 * one), else the bridge's inner MTU (its overlay's underlay MTU minus the
 * encapsulation: 50 VXLAN/Geneve, 38 GRE, 58 OVN), else 0 (no overlay: the
 * kernel's default). Says which at info level, as the Rust SDK's mtu_for. */
bool ovsrun_mtu_for(const char *bridge, uint32_t given, uint32_t *mtu, ovsrun_error *err);

bool ovsrun_port_add(const char *bridge, ovsrun_target target, const char *ifname,
                     const ovsrun_port_options *options, ovsrun_port *port, ovsrun_error *err);
/* ovsrun_port_add that also gives the inner end `address` and a default route
 * via `gateway` (either may be NULL), set while the veth is made: one call,
 * one OVS transaction, all or none (attach-ports with one request). The policy
 * judges the address as set-address and the route as set-route. */
bool ovsrun_port_attach(const char *bridge, ovsrun_target target, const char *ifname,
                        const ovsrun_port_options *options, const ovsrun_cidr *address,
                        const ovsrun_ip *gateway, ovsrun_port *port, ovsrun_error *err);
bool ovsrun_port_del(const char *bridge, ovsrun_target target, const char *ifname, bool *removed,
                     ovsrun_error *err);
bool ovsrun_port_del_all(const char *bridge, const char *container, uint32_t *removed, ovsrun_error *err);
/* vlan 0 clears the tag. */
bool ovsrun_port_set_vlan(const char *bridge, ovsrun_target target, const char *ifname, uint16_t vlan,
                          ovsrun_error *err);

bool ovsrun_link_set_address(ovsrun_target target, const char *ifname, const ovsrun_cidr *cidr, bool *added,
                             ovsrun_error *err);
bool ovsrun_link_del_address(ovsrun_target target, const char *ifname, const ovsrun_cidr *cidr, bool *removed,
                             ovsrun_error *err);
/* The addresses on the container interfaces of `bridge`'s ports, as each
 * container sees them (a container that cannot be read, e.g. stopped, has
 * none): at most `cap` into `out`, how many in `*n`. What the Rust SDK's
 * ports::list plus links::list give; seed-demo picks a free address with it. */
bool ovsrun_bridge_container_addresses(const char *bridge, ovsrun_cidr *out, size_t cap, size_t *n,
                                       ovsrun_error *err);
bool ovsrun_link_set_mtu(ovsrun_target target, const char *ifname, uint32_t mtu, ovsrun_error *err);
bool ovsrun_link_set_up(ovsrun_target target, const char *ifname, ovsrun_error *err);
bool ovsrun_link_set_down(ovsrun_target target, const char *ifname, ovsrun_error *err);

/* NULL fields are unset; destination NULL is the default route. */
typedef struct {
    const ovsrun_cidr *destination;
    const ovsrun_ip *via;
    const char *dev;
} ovsrun_route;

bool ovsrun_route_add(ovsrun_target target, const ovsrun_route *route, bool *added, ovsrun_error *err);
bool ovsrun_route_del(ovsrun_target target, const ovsrun_route *route, bool *removed, ovsrun_error *err);

typedef struct {
    char *id;
    char *name;
    uint32_t pid;
    bool running;
} ovsrun_container_info;

bool ovsrun_container_lookup(const char *name_or_id, ovsrun_container_info *info, ovsrun_error *err);

typedef ovs_run_net_diagnostics_ping_stats_t ovsrun_ping_stats;
bool ovsrun_ping(ovsrun_target target, const ovsrun_ip *address, uint32_t count, uint32_t timeout_ms,
                 ovsrun_ping_stats *stats, ovsrun_error *err);
/* "3 sent, 3 received, rtt min/avg/max 0.041/0.052/0.070 ms" */
typedef struct { char s[96]; } ovsrun_ping_text;
ovsrun_ping_text ovsrun_ping_str(const ovsrun_ping_stats *stats);
/* `bytes` over TCP from inside `client` to a listener on `server_address` inside `server`. */
typedef ovs_run_net_diagnostics_transfer_stats_t ovsrun_transfer_stats;
bool ovsrun_tcp_check(ovsrun_target client, ovsrun_target server, const ovsrun_ip *server_address, uint64_t bytes,
                      uint32_t timeout_ms, ovsrun_transfer_stats *stats, ovsrun_error *err);
/* "1048576 bytes in 4.1 ms (2046 Mbit/s)", as the Rust SDK shows it. */
ovsrun_ping_text ovsrun_transfer_str(const ovsrun_transfer_stats *stats);

/* Messages to the user, printf-style. */
void ovsrun_log(ovs_run_net_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define ovsrun_trace(...) ovsrun_log(OVS_RUN_NET_LOG_LEVEL_TRACE, __VA_ARGS__)
#define ovsrun_debug(...) ovsrun_log(OVS_RUN_NET_LOG_LEVEL_DEBUG, __VA_ARGS__)
#define ovsrun_info(...) ovsrun_log(OVS_RUN_NET_LOG_LEVEL_INFO, __VA_ARGS__)
#define ovsrun_warn(...) ovsrun_log(OVS_RUN_NET_LOG_LEVEL_WARN, __VA_ARGS__)
#define ovsrun_error_log(...) ovsrun_log(OVS_RUN_NET_LOG_LEVEL_ERROR, __VA_ARGS__)

/* ---- The export ----------------------------------------------------------- */

typedef bool (*ovsrun_main)(const ovsrun_args *args, ovsrun_error *err);

/* The body of `run`: parse the arguments against usage/options (a
 * NULL-terminated list of names without "--"), print the usage on --help,
 * call main, turn its error into the run's error. */
bool ovsrun_run(script_list_string_t *raw, script_string_t *ret_err, const char *usage,
                const char *const options[], ovsrun_main main);

/* Makes `main` the script's `run` export. Use once, at file scope. */
#define OVSRUN_SCRIPT(main, usage, options)                                        \
    bool exports_script_run(script_list_string_t *args, script_string_t *err) {   \
        return ovsrun_run(args, err, usage, options, main);                        \
    }

#endif
