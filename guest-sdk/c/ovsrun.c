/*
 * The C SDK for ovs-run scripts: see ovsrun.h. The value checks and their
 * messages follow the Rust SDK (guest-sdk/src/net.rs, args.rs) word for
 * word, so a script behaves the same in every language.
 */
#include "ovsrun.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Memory: everything handed out lives until the run ends --------------- */

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p)
        abort(); /* out of memory: the host reports the trap */
    return p;
}

static char *xstrndup(const char *s, size_t n) {
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

static char *vformat(const char *fmt, va_list ap) {
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    char *s = xmalloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    return s;
}

static char *from_wit(const script_string_t *s) { return xstrndup((const char *)s->ptr, s->len); }

/* Borrowed: the bindings only read it during the call. */
static script_string_t to_wit(const char *s) {
    return (script_string_t){(uint8_t *)s, strlen(s)};
}

/* ---- Errors ----------------------------------------------------------------- */

static bool set_error(ovsrun_error *err, ovsrun_error_kind kind, char *message) {
    free(err->message);
    err->kind = kind;
    err->message = message;
    return false;
}

bool ovsrun_fail(ovsrun_error *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *m = vformat(fmt, ap);
    va_end(ap);
    return set_error(err, OVSRUN_ERR_SCRIPT, m);
}

bool ovsrun_invalid(ovsrun_error *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *m = vformat(fmt, ap);
    va_end(ap);
    return set_error(err, OVSRUN_ERR_INVALID, m);
}

bool ovsrun_context(ovsrun_error *err, const char *what) {
    return set_error(err, err->kind, format("%s: %s", what, err->message ? err->message : ""));
}

/* A host error becomes an ovsrun_error (and the host's strings are freed). */
static bool host_error(ovsrun_error *err, ovs_run_net_types_error_t *e) {
    static const ovsrun_error_kind kinds[] = {
        [OVS_RUN_NET_TYPES_ERROR_INVALID_ARGUMENT] = OVSRUN_ERR_INVALID_ARGUMENT,
        [OVS_RUN_NET_TYPES_ERROR_NOT_FOUND] = OVSRUN_ERR_NOT_FOUND,
        [OVS_RUN_NET_TYPES_ERROR_ALREADY_EXISTS] = OVSRUN_ERR_ALREADY_EXISTS,
        [OVS_RUN_NET_TYPES_ERROR_DENIED] = OVSRUN_ERR_DENIED,
        [OVS_RUN_NET_TYPES_ERROR_FAILED] = OVSRUN_ERR_FAILED,
    };
    /* Every case carries a string at the same place. */
    ovsrun_error_kind kind = e->tag < 5 ? kinds[e->tag] : OVSRUN_ERR_FAILED;
    char *m = from_wit(&e->val.failed);
    ovs_run_net_types_error_free(e);
    return set_error(err, kind, m);
}

/* The text the user sees: host errors with their kind first, as in Rust. */
static char *error_text(const ovsrun_error *err) {
    static const char *const prefix[] = {
        [OVSRUN_ERR_SCRIPT] = "",
        [OVSRUN_ERR_INVALID] = "",
        [OVSRUN_ERR_INVALID_ARGUMENT] = "invalid argument: ",
        [OVSRUN_ERR_NOT_FOUND] = "not found: ",
        [OVSRUN_ERR_ALREADY_EXISTS] = "already exists: ",
        [OVSRUN_ERR_DENIED] = "denied: ",
        [OVSRUN_ERR_FAILED] = "failed: ",
    };
    const char *m = err->message ? err->message : "the script failed without saying why";
    return format("%s%s", prefix[err->kind], m);
}

/* ---- Network values ---------------------------------------------------------- */

/* Long values are cut in messages (64 bytes, at a character boundary, then "..."). */
static char *shorten(const char *s) {
    size_t n = strlen(s);
    if (n <= 64)
        return xstrndup(s, n);
    size_t end = 64;
    while (end > 0 && ((unsigned char)s[end] & 0xC0) == 0x80)
        end--;
    return format("%.*s...", (int)end, s);
}

/* Rust's u16/u32 parsing: ASCII digits with an optional leading '+'. */
static bool parse_uint(const char *s, uint64_t max, uint64_t *out) {
    if (*s == '+')
        s++;
    if (!*s)
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > max)
            return false;
    }
    *out = v;
    return true;
}

/* A character as Rust's {:?} shows it ('/', '\t', '\u{1b}'). */
static char *char_debug(unsigned char c) {
    switch (c) {
    case '\t': return format("'\\t'");
    case '\n': return format("'\\n'");
    case '\r': return format("'\\r'");
    case '\0': return format("'\\0'");
    case '\'': return format("'\\''");
    }
    if (c < 0x20 || c == 0x7f)
        return format("'\\u{%x}'", c);
    return format("'%c'", c);
}

bool ovsrun_parse_ifname(const char *s, void *out, ovsrun_error *err) {
    size_t n = strlen(s);
    if (n == 0)
        return ovsrun_invalid(err, "interface name is empty");
    char *shown = shorten(s);
    if (n > 15)
        return ovsrun_invalid(err, "interface name '%s' is %zu bytes long; the limit is 15", shown, n);
    if (!strcmp(s, ".") || !strcmp(s, ".."))
        return ovsrun_invalid(err, "interface name '%s' is reserved", s);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '/' || *c == ':' || *c == ' ' || (*c >= '\t' && *c <= '\r') || *c < 0x20 || *c == 0x7f)
            return ovsrun_invalid(err, "interface name '%s' contains %s, which Linux does not allow", shown,
                                  char_debug(*c));
    }
    *(const char **)out = s;
    return true;
}

bool ovsrun_parse_container(const char *s, void *out, ovsrun_error *err) {
    const char *name = *s == '/' ? s + 1 : s;
    size_t n = strlen(name);
    bool ok = n > 0 && n <= 128;
    for (const char *c = name; ok && *c; c++) {
        ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
             *c == '.' || *c == '-';
    }
    if (!ok)
        return ovsrun_invalid(err, "container '%s' is not a valid container name or id", shorten(s));
    *(const char **)out = name;
    return true;
}

static bool ip_from_text(const char *s, ovsrun_ip *ip) {
    memset(ip, 0, sizeof *ip);
    if (inet_pton(AF_INET, s, ip->addr) == 1) {
        ip->family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, s, ip->addr) == 1) {
        ip->family = AF_INET6;
        return true;
    }
    return false;
}

ovsrun_ip_text ovsrun_ip_str(const ovsrun_ip *ip) {
    ovsrun_ip_text t;
    if (!inet_ntop(ip->family, ip->addr, t.s, sizeof t.s))
        strcpy(t.s, "?");
    return t;
}

ovsrun_cidr_text ovsrun_cidr_str(const ovsrun_cidr *cidr) {
    ovsrun_cidr_text t;
    snprintf(t.s, sizeof t.s, "%s/%u", ovsrun_ip_str(&cidr->ip).s, cidr->prefix);
    return t;
}

bool ovsrun_parse_ip(const char *s, void *out, ovsrun_error *err) {
    /* Rust's std::net::IpAddr says this; ovsrun_arg adds the value. */
    if (!ip_from_text(s, out))
        return ovsrun_invalid(err, "invalid IP address syntax");
    return true;
}

bool ovsrun_parse_cidr(const char *s, void *out, ovsrun_error *err) {
    char *shown = shorten(s);
    const char *slash = strchr(s, '/');
    if (!slash)
        return ovsrun_invalid(err, "address '%s' has no prefix length (expected e.g. 10.1.0.2/24)", shown);
    char *a = xstrndup(s, (size_t)(slash - s));
    ovsrun_cidr *cidr = out;
    if (!ip_from_text(a, &cidr->ip))
        return ovsrun_invalid(err, "'%s' is not a valid CIDR: '%s' is not an IP address", shown, shorten(a));
    unsigned top = cidr->ip.family == AF_INET ? 32 : 128;
    uint64_t prefix;
    if (!parse_uint(slash + 1, 255, &prefix) || prefix > top)
        return ovsrun_invalid(err, "'%s' is not a valid CIDR: prefix length '%s' must be 0-%u", shown,
                              shorten(slash + 1), top);
    cidr->prefix = (uint8_t)prefix;
    return true;
}

static void apply_mask(uint8_t *addr, unsigned bytes, unsigned prefix) {
    for (unsigned i = 0; i < bytes; i++) {
        unsigned keep = prefix >= 8 * (i + 1) ? 8 : (prefix > 8 * i ? prefix - 8 * i : 0);
        addr[i] &= (uint8_t)(0xFF00u >> keep);
    }
}

ovsrun_cidr ovsrun_cidr_network(const ovsrun_cidr *cidr) {
    ovsrun_cidr net = *cidr;
    apply_mask(net.ip.addr, cidr->ip.family == AF_INET ? 4 : 16, cidr->prefix);
    return net;
}

bool ovsrun_cidr_host(const ovsrun_cidr *cidr, uint64_t n, ovsrun_cidr *out, ovsrun_error *err) {
    bool v4 = cidr->ip.family == AF_INET;
    unsigned bytes = v4 ? 4 : 16, host_bits = (v4 ? 32u : 128u) - cidr->prefix;
    ovsrun_cidr net = *cidr;
    apply_mask(net.ip.addr, bytes, cidr->prefix);
    bool too_big = false;
    if (host_bits < 64) {
        uint64_t size = (uint64_t)1 << host_bits;
        too_big = n >= (v4 ? size - 1 : size);
    }
    if (n == 0 || too_big)
        return ovsrun_invalid(err, "%s has no host address number %llu", ovsrun_cidr_str(&net).s,
                              (unsigned long long)n);
    *out = net;
    for (unsigned i = 0; i < 8 && n; i++, n >>= 8)
        out->ip.addr[bytes - 1 - i] |= (uint8_t)(n & 0xFF);
    return true;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool ovsrun_parse_mac(const char *s, void *out, ovsrun_error *err) {
    char *shown = shorten(s);
    uint8_t o[6];
    const char *p = s;
    for (int i = 0; i < 6; i++) {
        int len = 0, v = 0;
        while (p[len] && p[len] != ':') {
            int d = hex_digit(p[len]);
            if (d < 0 || len == 2)
                goto bad;
            v = v * 16 + d;
            len++;
        }
        if (len == 0 || (i < 5 && p[len] != ':') || (i == 5 && p[len] != 0))
            goto bad;
        o[i] = (uint8_t)v;
        p += len + 1;
    }
    if (o[0] & 1)
        return ovsrun_invalid(err, "MAC address '%s' is a multicast address; an interface needs a unicast one", shown);
    if (!(o[0] | o[1] | o[2] | o[3] | o[4] | o[5]))
        return ovsrun_invalid(err, "MAC address '%s' is all zeros", shown);
    snprintf(((ovsrun_mac *)out)->text, sizeof ((ovsrun_mac *)out)->text, "%02x:%02x:%02x:%02x:%02x:%02x", o[0],
             o[1], o[2], o[3], o[4], o[5]);
    return true;
bad:
    return ovsrun_invalid(err, "MAC address '%s' is not six hex octets separated by ':' (e.g. 02:42:ac:11:00:02)",
                          shown);
}

bool ovsrun_parse_mtu(const char *s, void *out, ovsrun_error *err) {
    uint64_t v;
    if (!parse_uint(s, UINT32_MAX, &v))
        return ovsrun_invalid(err, "MTU '%s' is not a number 68-65535", shorten(s));
    if (v < 68 || v > 65535)
        return ovsrun_invalid(err, "MTU '%s' is out of range 68-65535", s);
    *(uint32_t *)out = (uint32_t)v;
    return true;
}

bool ovsrun_parse_vlan(const char *s, void *out, ovsrun_error *err) {
    uint64_t v;
    if (!parse_uint(s, UINT16_MAX, &v))
        return ovsrun_invalid(err, "VLAN id '%s' is not a number 1-4094", shorten(s));
    if (v < 1 || v > 4094)
        return ovsrun_invalid(err, "VLAN id '%s' is out of range 1-4094", s);
    *(uint16_t *)out = (uint16_t)v;
    return true;
}

/* ---- Command lines ------------------------------------------------------------ */

struct ovsrun_args {
    const char *usage;
    const char *const *options;
    char **positional;
    size_t npositional;
    const char **values; /* per declared option, NULL when not given */
};

static bool usage_error(const ovsrun_args *a, ovsrun_error *err, char *message) {
    const char *line = a->usage;
    while (*line == '\n' || *line == ' ')
        line++;
    size_t len = strcspn(line, "\n");
    while (len && line[len - 1] == ' ')
        len--;
    if (!len)
        return set_error(err, OVSRUN_ERR_INVALID, message);
    return ovsrun_invalid(err, "%s (%.*s; see --help)", message, (int)len, line);
}

static int option_index(const ovsrun_args *a, const char *key, size_t len) {
    for (int i = 0; a->options[i]; i++)
        if (strlen(a->options[i]) == len && !strncmp(a->options[i], key, len))
            return i;
    return -1;
}

/* 1: parsed, 0: help was asked for, -1: error. */
static int args_parse(ovsrun_args *a, char **raw, size_t n, ovsrun_error *err) {
    for (size_t i = 0; i < n && strcmp(raw[i], "--"); i++)
        if (!strcmp(raw[i], "--help") || !strcmp(raw[i], "-h"))
            return 0;
    size_t nopts = 0;
    while (a->options[nopts])
        nopts++;
    a->values = xmalloc(nopts * sizeof *a->values);
    memset(a->values, 0, nopts * sizeof *a->values);
    a->positional = xmalloc(n * sizeof *a->positional);
    for (size_t i = 0; i < n; i++) {
        char *arg = raw[i];
        if (!strcmp(arg, "--")) {
            while (++i < n)
                a->positional[a->npositional++] = raw[i];
            break;
        }
        if (strncmp(arg, "--", 2)) {
            a->positional[a->npositional++] = arg;
            continue;
        }
        char *key = arg + 2, *eq = strchr(key, '=');
        size_t keylen = eq ? (size_t)(eq - key) : strlen(key);
        int k = option_index(a, key, keylen);
        if (k < 0) {
            char *name = xstrndup(key, keylen);
            usage_error(a, err, format("unknown option --%s", shorten(name)));
            return -1;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value) {
            /* `--key value`, but not `--key --other`: that is a forgotten value. */
            if (i + 1 >= n || !strncmp(raw[i + 1], "--", 2)) {
                usage_error(a, err, format("option --%s needs a value", a->options[k]));
                return -1;
            }
            value = raw[++i];
        }
        if (a->values[k]) {
            usage_error(a, err, format("option --%s given twice", a->options[k]));
            return -1;
        }
        a->values[k] = value;
    }
    return 1;
}

bool ovsrun_args_exact(const ovsrun_args *a, size_t n, const char *const names[], const char *pos[],
                       ovsrun_error *err) {
    if (a->npositional < n)
        return usage_error(a, err, format("missing argument %s", names[a->npositional]));
    if (a->npositional > n)
        return usage_error(a, err, format("unexpected argument '%s'", shorten(a->positional[n])));
    for (size_t i = 0; i < n; i++)
        pos[i] = a->positional[i];
    return true;
}

const char *ovsrun_args_get(const ovsrun_args *a, const char *key) {
    int k = option_index(a, key, strlen(key));
    if (k < 0) {
        fprintf(stderr, "option --%s is not in this script's option list\n", key);
        abort();
    }
    return a->values[k];
}

bool ovsrun_arg(const char *name, const char *value, ovsrun_parser parse, void *out, ovsrun_error *err) {
    if (parse(value, out, err))
        return true;
    char *shown = shorten(value), *quoted = format("'%s'", shown);
    /* The SDK's messages quote the value themselves; others get it added. */
    if (*value && strstr(err->message, quoted))
        return ovsrun_context(err, name);
    return set_error(err, err->kind, format("%s: '%s': %s", name, shown, err->message));
}

bool ovsrun_opt(const ovsrun_args *a, const char *key, ovsrun_parser parse, void *out, bool *given,
                ovsrun_error *err) {
    const char *value = ovsrun_args_get(a, key);
    *given = value != NULL;
    return !value || ovsrun_arg(format("--%s", key), value, parse, out, err);
}

bool ovsrun_opt_or(const ovsrun_args *a, const char *key, const char *fallback, ovsrun_parser parse, void *out,
                   ovsrun_error *err) {
    const char *value = ovsrun_args_get(a, key);
    return ovsrun_arg(format("--%s", key), value ? value : fallback, parse, out, err);
}

/* ---- Targets and capabilities ------------------------------------------------- */

ovsrun_target ovsrun_host(void) { return (ovsrun_target){OVS_RUN_NET_TYPES_TARGET_HOST, NULL}; }
ovsrun_target ovsrun_container(const char *name) {
    return (ovsrun_target){OVS_RUN_NET_TYPES_TARGET_CONTAINER, name};
}
ovsrun_target ovsrun_netns(const char *name) { return (ovsrun_target){OVS_RUN_NET_TYPES_TARGET_NETNS, name}; }

static ovs_run_net_types_target_t wit_target(ovsrun_target t) {
    ovs_run_net_types_target_t w = {.tag = t.kind};
    if (t.kind == OVS_RUN_NET_TYPES_TARGET_CONTAINER)
        w.val.container = to_wit(t.name);
    else if (t.kind == OVS_RUN_NET_TYPES_TARGET_NETNS)
        w.val.netns = to_wit(t.name);
    return w;
}

static script_option_string_t opt_string(const char *s) {
    return s ? (script_option_string_t){true, to_wit(s)} : (script_option_string_t){false, {0}};
}

/* Host calls: on error convert it, on success store the bool result when asked. */
#define HOST_CALL(call, e) ((call) ? true : host_error(err, &(e)))

bool ovsrun_bridge_create(const char *name, ovsrun_datapath datapath, bool may_exist, bool *created,
                          ovsrun_error *err) {
    script_string_t n = to_wit(name);
    bool ret;
    ovs_run_net_types_error_t e;
    OVSRUN_TRY(HOST_CALL(ovs_run_net_bridges_create_bridge(&n, datapath, may_exist, &ret, &e), e));
    if (created)
        *created = ret;
    return true;
}

bool ovsrun_bridge_delete(const char *name, bool if_exists, bool *deleted, ovsrun_error *err) {
    script_string_t n = to_wit(name);
    bool ret;
    ovs_run_net_types_error_t e;
    OVSRUN_TRY(HOST_CALL(ovs_run_net_bridges_delete_bridge(&n, if_exists, &ret, &e), e));
    if (deleted)
        *deleted = ret;
    return true;
}

bool ovsrun_mtu_for(const char *bridge, uint32_t given, uint32_t *mtu, ovsrun_error *err) {
    if (given) {
        ovsrun_info("MTU %u, as given", (unsigned)given);
        *mtu = given;
        return true;
    }
    script_string_t b = to_wit(bridge);
    ovs_run_net_ports_option_overlay_mtu_t found;
    ovs_run_net_types_error_t e;
    OVSRUN_TRY(HOST_CALL(ovs_run_net_ports_inner_mtu(&b, &found, &e), e));
    if (!found.is_some) {
        ovsrun_info("bridge %s has no overlay: MTU left at the kernel's default", bridge);
        *mtu = 0;
        return true;
    }
    char *reason = from_wit(&found.val.reason);
    ovsrun_info("MTU %u, bridge %s's inner MTU: %s", (unsigned)found.val.mtu, bridge, reason);
    free(reason);
    *mtu = found.val.mtu;
    ovs_run_net_ports_option_overlay_mtu_free(&found);
    return true;
}

static ovs_run_net_ports_port_options_t wit_port_options(const ovsrun_port_options *o) {
    ovs_run_net_ports_port_options_t opts = {0};
    if (o && o->mtu)
        opts.mtu = (script_option_u32_t){true, o->mtu};
    if (o && o->mac)
        opts.mac = opt_string(o->mac->text);
    if (o && o->vlan)
        opts.vlan = (script_option_u16_t){true, o->vlan};
    return opts;
}

static void take_port(const ovs_run_net_ports_port_info_t *info, ovsrun_port *port) {
    if (port) {
        port->name = from_wit(&info->name);
        port->error = info->error.is_some ? from_wit(&info->error.val) : NULL;
        port->ofport = info->ofport.is_some ? info->ofport.val : -1;
    }
}

bool ovsrun_port_add(const char *bridge, ovsrun_target target, const char *ifname,
                     const ovsrun_port_options *o, ovsrun_port *port, ovsrun_error *err) {
    script_string_t b = to_wit(bridge), i = to_wit(ifname);
    ovs_run_net_types_target_t t = wit_target(target);
    ovs_run_net_ports_port_options_t opts = wit_port_options(o);
    ovs_run_net_ports_port_info_t info;
    ovs_run_net_types_error_t e;
    OVSRUN_TRY(HOST_CALL(ovs_run_net_ports_add_port(&b, &t, &i, &opts, &info, &e), e));
    take_port(&info, port);
    ovs_run_net_ports_port_info_free(&info);
    return true;
}

bool ovsrun_port_attach(const char *bridge, ovsrun_target target, const char *ifname,
                        const ovsrun_port_options *o, const ovsrun_cidr *address, const ovsrun_ip *gateway,
                        ovsrun_port *port, ovsrun_error *err) {
    script_string_t b = to_wit(bridge);
    ovsrun_cidr_text cidr = {{0}};
    ovsrun_ip_text via = {{0}};
    script_string_t addresses[1];
    ovs_run_net_ports_attach_request_t req = {
        .port = {.target = wit_target(target), .ifname = to_wit(ifname), .options = wit_port_options(o)},
    };
    if (address) {
        cidr = ovsrun_cidr_str(address);
        addresses[0] = to_wit(cidr.s);
        req.addresses = (script_list_string_t){addresses, 1};
    }
    if (gateway) {
        via = ovsrun_ip_str(gateway);
        req.gateway = opt_string(via.s);
    }
    ovs_run_net_ports_list_attach_request_t reqs = {&req, 1};
    ovs_run_net_ports_list_port_info_t infos;
    ovs_run_net_types_error_t e;
    OVSRUN_TRY(HOST_CALL(ovs_run_net_ports_attach_ports(&b, &reqs, &infos, &e), e));
    size_t n = infos.len;
    if (n == 1)
        take_port(&infos.ptr[0], port);
    ovs_run_net_ports_list_port_info_free(&infos);
    return n == 1 || ovsrun_fail(err, "attach-ports answered %zu ports for 1 request", n);
}

bool ovsrun_port_del(const char *bridge, ovsrun_target target, const char *ifname, bool *removed,
                     ovsrun_error *err) {
    script_string_t b = to_wit(bridge), i = to_wit(ifname);
    ovs_run_net_types_target_t t = wit_target(target);
    bool ret;
    ovs_run_net_types_error_t e;
    OVSRUN_TRY(HOST_CALL(ovs_run_net_ports_del_port(&b, &t, &i, &ret, &e), e));
    if (removed)
        *removed = ret;
    return true;
}

bool ovsrun_port_del_all(const char *bridge, const char *container, uint32_t *removed, ovsrun_error *err) {
    script_string_t b = to_wit(bridge), c = to_wit(container);
    uint32_t ret;
    ovs_run_net_types_error_t e;
    OVSRUN_TRY(HOST_CALL(ovs_run_net_ports_del_ports(&b, &c, &ret, &e), e));
    if (removed)
        *removed = ret;
    return true;
}

bool ovsrun_port_set_vlan(const char *bridge, ovsrun_target target, const char *ifname, uint16_t vlan,
                          ovsrun_error *err) {
    script_string_t b = to_wit(bridge), i = to_wit(ifname);
    ovs_run_net_types_target_t t = wit_target(target);
    ovs_run_net_types_error_t e;
    return HOST_CALL(ovs_run_net_ports_set_vlan(&b, &t, &i, vlan ? &vlan : NULL, &e), e);
}

static bool address_call(bool add, ovsrun_target target, const char *ifname, const ovsrun_cidr *cidr, bool *changed,
                         ovsrun_error *err) {
    script_string_t i = to_wit(ifname), c = to_wit(ovsrun_cidr_str(cidr).s);
    ovs_run_net_types_target_t t = wit_target(target);
    bool ret;
    ovs_run_net_types_error_t e;
    bool ok = add ? ovs_run_net_links_set_address(&t, &i, &c, &ret, &e) : ovs_run_net_links_del_address(&t, &i, &c, &ret, &e);
    OVSRUN_TRY(HOST_CALL(ok, e));
    if (changed)
        *changed = ret;
    return true;
}

bool ovsrun_link_set_address(ovsrun_target target, const char *ifname, const ovsrun_cidr *cidr, bool *added,
                             ovsrun_error *err) {
    return address_call(true, target, ifname, cidr, added, err);
}

bool ovsrun_link_del_address(ovsrun_target target, const char *ifname, const ovsrun_cidr *cidr, bool *removed,
                             ovsrun_error *err) {
    return address_call(false, target, ifname, cidr, removed, err);
}

/* The container a port belongs to: container_full_id when ovs-run made it, else ovs-docker's container_id. */
static char *port_owner(const ovs_run_net_ports_port_info_t *p) {
    const char *keys[] = {"container_full_id", "container_id"};
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < p->external_ids.len; i++) {
            const script_string_t *key = &p->external_ids.ptr[i].key;
            if (key->len == strlen(keys[k]) && memcmp(key->ptr, keys[k], key->len) == 0)
                return from_wit(&p->external_ids.ptr[i].value);
        }
    return NULL;
}

bool ovsrun_bridge_container_addresses(const char *bridge, ovsrun_cidr *out, size_t cap, size_t *n,
                                       ovsrun_error *err) {
    script_string_t b = to_wit(bridge);
    ovs_run_net_ports_list_port_info_t list;
    ovs_run_net_types_error_t e;
    OVSRUN_TRY(HOST_CALL(ovs_run_net_ports_list_ports(&b, &list, &e), e));
    *n = 0;
    for (size_t i = 0; i < list.len; i++) {
        const ovs_run_net_ports_port_info_t *p = &list.ptr[i];
        char *owner = port_owner(p);
        if (!owner || p->container_iface.len == 0) {
            free(owner);
            continue;
        }
        ovs_run_net_types_target_t t = wit_target(ovsrun_container(owner));
        script_string_t iface = p->container_iface;
        ovs_run_net_links_list_link_info_t links;
        ovs_run_net_types_error_t le;
        if (!ovs_run_net_links_list_links(&t, &iface, &links, &le)) {
            ovs_run_net_types_error_free(&le); /* not readable: holds nothing */
            free(owner);
            continue;
        }
        for (size_t l = 0; l < links.len; l++)
            for (size_t a = 0; a < links.ptr[l].addresses.len && *n < cap; a++) {
                char *text = from_wit(&links.ptr[l].addresses.ptr[a]);
                ovsrun_error ignored = {0};
                if (ovsrun_parse_cidr(text, &out[*n], &ignored))
                    (*n)++;
                free(ignored.message);
                free(text);
            }
        ovs_run_net_links_list_link_info_free(&links);
        free(owner);
    }
    ovs_run_net_ports_list_port_info_free(&list);
    return true;
}

bool ovsrun_link_set_mtu(ovsrun_target target, const char *ifname, uint32_t mtu, ovsrun_error *err) {
    script_string_t i = to_wit(ifname);
    ovs_run_net_types_target_t t = wit_target(target);
    ovs_run_net_types_error_t e;
    return HOST_CALL(ovs_run_net_links_set_mtu(&t, &i, mtu, &e), e);
}

bool ovsrun_link_set_up(ovsrun_target target, const char *ifname, ovsrun_error *err) {
    script_string_t i = to_wit(ifname);
    ovs_run_net_types_target_t t = wit_target(target);
    ovs_run_net_types_error_t e;
    return HOST_CALL(ovs_run_net_links_set_link_up(&t, &i, &e), e);
}

bool ovsrun_link_set_down(ovsrun_target target, const char *ifname, ovsrun_error *err) {
    script_string_t i = to_wit(ifname);
    ovs_run_net_types_target_t t = wit_target(target);
    ovs_run_net_types_error_t e;
    return HOST_CALL(ovs_run_net_links_set_link_down(&t, &i, &e), e);
}

static bool route_call(bool add, ovsrun_target target, const ovsrun_route *r, bool *changed, ovsrun_error *err) {
    ovsrun_cidr_text dest = {{0}};
    ovsrun_ip_text via = {{0}};
    if (r->destination)
        dest = ovsrun_cidr_str(r->destination);
    if (r->via)
        via = ovsrun_ip_str(r->via);
    ovs_run_net_routes_route_t route = {
        .destination = opt_string(r->destination ? dest.s : NULL),
        .via = opt_string(r->via ? via.s : NULL),
        .device = opt_string(r->dev),
    };
    ovs_run_net_types_target_t t = wit_target(target);
    bool ret;
    ovs_run_net_types_error_t e;
    bool ok = add ? ovs_run_net_routes_set_route(&t, &route, &ret, &e) : ovs_run_net_routes_del_route(&t, &route, &ret, &e);
    OVSRUN_TRY(HOST_CALL(ok, e));
    if (changed)
        *changed = ret;
    return true;
}

bool ovsrun_route_add(ovsrun_target target, const ovsrun_route *route, bool *added, ovsrun_error *err) {
    return route_call(true, target, route, added, err);
}

bool ovsrun_route_del(ovsrun_target target, const ovsrun_route *route, bool *removed, ovsrun_error *err) {
    return route_call(false, target, route, removed, err);
}

bool ovsrun_container_lookup(const char *name_or_id, ovsrun_container_info *out, ovsrun_error *err) {
    script_string_t n = to_wit(name_or_id);
    ovs_run_net_containers_container_info_t info;
    ovs_run_net_types_error_t e;
    OVSRUN_TRY(HOST_CALL(ovs_run_net_containers_lookup(&n, &info, &e), e));
    out->id = from_wit(&info.id);
    out->name = from_wit(&info.name);
    out->pid = info.pid;
    out->running = info.running;
    ovs_run_net_containers_container_info_free(&info);
    return true;
}

bool ovsrun_ping(ovsrun_target target, const ovsrun_ip *address, uint32_t count, uint32_t timeout_ms,
                 ovsrun_ping_stats *stats, ovsrun_error *err) {
    script_string_t a = to_wit(ovsrun_ip_str(address).s);
    ovs_run_net_types_target_t t = wit_target(target);
    ovs_run_net_types_error_t e;
    return HOST_CALL(ovs_run_net_diagnostics_ping(&t, &a, count, timeout_ms, stats, &e), e);
}

bool ovsrun_tcp_check(ovsrun_target client, ovsrun_target server, const ovsrun_ip *server_address, uint64_t bytes,
                      uint32_t timeout_ms, ovsrun_transfer_stats *stats, ovsrun_error *err) {
    script_string_t a = to_wit(ovsrun_ip_str(server_address).s);
    ovs_run_net_types_target_t c = wit_target(client), s = wit_target(server);
    ovs_run_net_types_error_t e;
    return HOST_CALL(ovs_run_net_diagnostics_tcp_check(&c, &s, &a, bytes, timeout_ms, stats, &e), e);
}

ovsrun_ping_text ovsrun_transfer_str(const ovsrun_transfer_stats *s) {
    ovsrun_ping_text t;
    double ms = s->elapsed_us / 1000.0;
    if (s->received == s->sent)
        snprintf(t.s, sizeof t.s, "%llu bytes in %.1f ms (%.0f Mbit/s)", (unsigned long long)s->received, ms,
                 s->received * 8.0 / (double)(s->elapsed_us ? s->elapsed_us : 1));
    else
        snprintf(t.s, sizeof t.s, "%llu of %llu bytes arrived in %.1f ms", (unsigned long long)s->received,
                 (unsigned long long)s->sent, ms);
    return t;
}

ovsrun_ping_text ovsrun_ping_str(const ovsrun_ping_stats *s) {
    ovsrun_ping_text t;
    int n = snprintf(t.s, sizeof t.s, "%u sent, %u received", s->sent, s->received);
    if (s->received > 0 && n > 0 && (size_t)n < sizeof t.s)
        snprintf(t.s + n, sizeof t.s - (size_t)n, ", rtt min/avg/max %.3f/%.3f/%.3f ms", s->rtt_min_us / 1000.0,
                 s->rtt_avg_us / 1000.0, s->rtt_max_us / 1000.0);
    return t;
}

void ovsrun_log(ovs_run_net_log_level_t level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *m = vformat(fmt, ap);
    va_end(ap);
    script_string_t s = to_wit(m);
    ovs_run_net_log_log(level, &s);
    free(m);
}

/* ---- The export ----------------------------------------------------------------- */

bool ovsrun_run(script_list_string_t *raw, script_string_t *ret_err, const char *usage,
                const char *const options[], ovsrun_main main) {
    size_t n = raw->len;
    char **argv = xmalloc(n * sizeof *argv);
    for (size_t i = 0; i < n; i++)
        argv[i] = from_wit(&raw->ptr[i]);
    script_list_string_free(raw);

    ovsrun_args args = {.usage = usage, .options = options};
    ovsrun_error err = {OVSRUN_ERR_SCRIPT, NULL};
    int parsed = args_parse(&args, argv, n, &err);
    bool ok;
    if (parsed == 0) {
        size_t len = strlen(usage);
        while (len && (usage[len - 1] == '\n' || usage[len - 1] == ' '))
            len--;
        printf("%.*s\n", (int)len, usage);
        fflush(stdout);
        ok = true;
    } else {
        ok = parsed > 0 && main(&args, &err);
    }
    if (!ok) {
        /* The canonical ABI frees this string with free() after the call. */
        char *text = error_text(&err);
        *ret_err = (script_string_t){(uint8_t *)text, strlen(text)};
    }
    return ok;
}
