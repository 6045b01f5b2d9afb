# ovs-run: `make demo` tries it end to end in a private sandbox (`make
# demo-multihost`: across three simulated hosts, with tunnels and OVN), `make test`
# runs every test (starting the daemons they need), `make build` builds the
# binary and scripts/*.wasm, `make install` puts them on this host (after
# `make build`; PREFIX=/usr/local, DESTDIR for staging), `make guests` the Python, JavaScript and C
# scripts (scripts/{python,js,c}/*.wasm), `make bench` runs the side-by-side benchmark.

SHELL := /bin/bash
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
BIN := $(TARGET_DIR)/release/ovs-run
WASM_DIR := $(TARGET_DIR)/wasm32-wasip2/script
SCRIPTS := attach attach-many detach detach-many detach-all set-vlan seed-demo mesh underlay modify ovn-attach ovn-network ovn-attach-many
TEST_GUESTS := hostile noop probe ungranted net-hook
# The scripts are signed with this key. The repository's is a TEST key, its
# secret is public: deployments sign with their own (make build SIGNING_KEY=...)
# and trust only their own public keys (/etc/ovs-run/trusted-keys).
SIGNING_KEY ?= keys/test/ovs-run-test-only.key

# Scripts in other languages: sources under scripts/LANG/, built by
# guest-sdk/build-guest (which installs each toolchain on first use).
GUEST_SCRIPTS := attach detach seed-demo
GUEST_WASM := $(foreach l,python js c,$(addprefix scripts/$(l)/,$(addsuffix .wasm,$(GUEST_SCRIPTS)))) \
	tests/guests/python/hostile.wasm tests/guests/js/raises.wasm
WIT := wit/ovs-run.wit

.PHONY: all build deps wasm-target guests guest-toolchains test demo bench lint fmt clean install uninstall

all: build

# Debian packages the daemons and the tests need (root, apt): idempotent.
deps:
	@bash tests/support/install-deps.sh

wasm-target:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

build: wasm-target
	cargo build --release -p ovs-run
	cargo build --profile script --target wasm32-wasip2 $(addprefix -p ,$(SCRIPTS) $(TEST_GUESTS))
	@for s in $(SCRIPTS); do cp "$(WASM_DIR)/$$(echo $$s | tr - _).wasm" scripts/$$s.wasm; done
	@# Metadata (Cargo.toml fields and usage, embedded by the SDK) first: signatures cover it.
	@for s in $(SCRIPTS); do \
	    $(BIN) metadata set scripts/$$s.wasm >/dev/null && \
	    $(BIN) sign --key $(SIGNING_KEY) scripts/$$s.wasm >/dev/null || exit 1; \
	done
	@for g in $(TEST_GUESTS); do cp "$(WASM_DIR)/$$(echo $$g | tr - _).wasm" tests/guests/$$g.wasm; done
	@if [ "$(TARGET_DIR)" != "$(CURDIR)/target" ]; then mkdir -p target/release && ln -sf "$(BIN)" target/release/ovs-run; fi
	@echo "built $(BIN) and scripts/{$(shell echo $(SCRIPTS) | tr ' ' ',')}.wasm, signed with $(SIGNING_KEY)"

# Toolchains first (one at a time: they share apt and the network), then
# the components two at a time (componentize-py and componentize-qjs use one core each).
guests: guest-toolchains
	@$(MAKE) --no-print-directory -s -j2 $(GUEST_WASM)

guest-toolchains:
	cargo build --release -p ovs-run-componentize
	@for l in python js c; do guest-sdk/build-guest $$l --install; done

# Metadata and the signature for a script in another language (the Rust
# SDK embeds its own; these get the same fields from here). Usage text comes
# from the script itself: `--help` under the dry-run prints it.
define publish
	@usage=$$($(BIN) --dry-run --no-cache $(1) --help 2>/dev/null || true); \
	$(BIN) metadata set $(1) --name $(2) --version 0.1.0 --authors "The ovs-run developers" \
	    --license Apache-2.0 --description "$(3) ($(4) twin of scripts/$(2))" \
	    $${usage:+--usage "$$usage"} >/dev/null && \
	$(BIN) sign --key $(SIGNING_KEY) $(1) >/dev/null
endef
DESC_attach := Connect a Docker container to an Open vSwitch bridge through a veth pair, like ovs-docker add-port
DESC_detach := Remove a container's interface from an Open vSwitch bridge, like ovs-docker del-port
DESC_seed-demo := The demo: attach a container and ping its gateway

.SECONDEXPANSION:
PY_SDK := guest-sdk/python/ovs_run.py guest-sdk/python/requirements.txt $(WIT)
JS_SDK := guest-sdk/js/ovs-run.js guest-sdk/js/wit/world.wit guest-sdk/js/package-lock.json $(WIT)
# (A pattern rule with two targets would be one recipe making both: one rule per directory.)
scripts/python/%.wasm: scripts/python/$$(subst -,_,$$*).py $(PY_SDK)
	@guest-sdk/build-guest python $< $@
	$(call publish,$@,$*,$(DESC_$*),Python)

tests/guests/python/%.wasm: tests/guests/python/%.py $(PY_SDK)
	@guest-sdk/build-guest python $< $@

scripts/js/%.wasm: scripts/js/%.js $(JS_SDK)
	@guest-sdk/build-guest js $< $@
	$(call publish,$@,$*,$(DESC_$*),JavaScript)

tests/guests/js/%.wasm: tests/guests/js/%.js $(JS_SDK)
	@guest-sdk/build-guest js $< $@

scripts/c/%.wasm: scripts/c/%.c guest-sdk/c/ovsrun.c guest-sdk/c/ovsrun.h $(WIT)
	@guest-sdk/build-guest c $< $@
	$(call publish,$@,$*,$(DESC_$*),C)

test: deps build guests
	bash tests/run-tests.sh

demo: deps build
	bash tests/demo.sh

# Containers across hosts on one machine: `sandbox up --hosts 3 --ovn`, a
# VXLAN mesh and an OVN switch, each with ping and TCP (tests/demo-multihost.sh).
.PHONY: demo-multihost
demo-multihost: deps build
	bash tests/demo-multihost.sh

# make bench N=1000, or BENCH_NS="10 100 1000": see tests/bench.sh; then the Docker
# network driver's section (BENCH_DOCKER_N=50): see tests/bench/docker-plugin.sh.
N ?= 100
bench: deps build
	BENCH_NS="$(or $(BENCH_NS),$(N))" bash tests/bench.sh
	bash tests/bench/docker-plugin.sh

# Across hosts (issue 18): a 3-host mesh, first packet on a new tunnel with and
# without neighbour seeding, OVN port bound -> TCP, 50 OVN attaches against a
# shell loop; see tests/bench/multihost.py (BENCH_ROUNDS, BENCH_OVN_N).
.PHONY: bench-multihost
bench-multihost: deps build
	bash tests/bench/multihost.sh

# `make install` (after `make build`): the stripped binary, the signed
# scripts (found by name: `ovs-run attach ...`), systemd units, manual pages
# and completions generated from the command line's definition. The scripts
# are signed with the repository's TEST key: see README "Install on a host".
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR := $(PREFIX)/bin
SCRIPTDIR := $(PREFIX)/share/ovs-run/scripts
MANDIR := $(PREFIX)/share/man/man1
# systemd reads units from /usr/local/lib/systemd/system and /lib/systemd/system.
UNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
BASHCOMPDIR := $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR := $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR := $(PREFIX)/share/fish/vendor_completions.d
UNITS := $(wildcard packaging/systemd/*.service)

install:
	@test -x $(BIN) || { echo "$(BIN) is missing: run 'make build' first" >&2; exit 1; }
	@for s in $(SCRIPTS); do test -f scripts/$$s.wasm || { echo "scripts/$$s.wasm is missing: run 'make build' first" >&2; exit 1; }; done
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SCRIPTDIR) $(DESTDIR)$(MANDIR) $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	install -m 0755 -s $(BIN) $(DESTDIR)$(BINDIR)/ovs-run
	install -m 0644 $(addprefix scripts/,$(addsuffix .wasm,$(SCRIPTS))) $(DESTDIR)$(SCRIPTDIR)/
	@for u in $(UNITS); do \
	    sed 's|@BINDIR@|$(BINDIR)|g' $$u >$(DESTDIR)$(UNITDIR)/$$(basename $$u) && \
	    chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$u) || exit 1; \
	done
	$(DESTDIR)$(BINDIR)/ovs-run generate man $(DESTDIR)$(MANDIR)
	$(DESTDIR)$(BINDIR)/ovs-run generate completions bash >$(DESTDIR)$(BASHCOMPDIR)/ovs-run
	$(DESTDIR)$(BINDIR)/ovs-run generate completions zsh >$(DESTDIR)$(ZSHCOMPDIR)/_ovs-run
	$(DESTDIR)$(BINDIR)/ovs-run generate completions fish >$(DESTDIR)$(FISHCOMPDIR)/ovs-run.fish
	@echo "installed ovs-run into $(DESTDIR)$(PREFIX) (units in $(DESTDIR)$(UNITDIR)); see README 'Install on a host'"

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/ovs-run $(addprefix $(DESTDIR)$(SCRIPTDIR)/,$(addsuffix .wasm,$(SCRIPTS))) \
	    $(DESTDIR)$(MANDIR)/ovs-run.1 $(DESTDIR)$(MANDIR)/ovs-run-*.1 \
	    $(addprefix $(DESTDIR)$(UNITDIR)/,$(notdir $(UNITS))) \
	    $(DESTDIR)$(BASHCOMPDIR)/ovs-run $(DESTDIR)$(ZSHCOMPDIR)/_ovs-run $(DESTDIR)$(FISHCOMPDIR)/ovs-run.fish
	-rmdir $(DESTDIR)$(SCRIPTDIR) $(DESTDIR)$(PREFIX)/share/ovs-run 2>/dev/null

lint:
	cargo fmt --all --check
	cargo clippy --release -p ovs-run -p ovsdb-client -p ovs-run-types -p ovs-run-componentize --all-targets -- -D warnings
	cargo clippy --profile script --target wasm32-wasip2 $(addprefix -p ,ovs-run-sdk $(SCRIPTS) $(TEST_GUESTS)) -- -D warnings

fmt:
	cargo fmt --all

clean:
	cargo clean
	rm -f scripts/*.wasm scripts/*/*.wasm tests/guests/*.wasm tests/guests/*/*.wasm
