# ovs-run: `make demo` tries it end to end in a private sandbox, `make test`
# runs every test (starting the daemons they need), `make build` builds the
# binary and scripts/*.wasm, `make bench` runs the side-by-side benchmark.

SHELL := /bin/bash
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
BIN := $(TARGET_DIR)/release/ovs-run
WASM_DIR := $(TARGET_DIR)/wasm32-wasip2/script
SCRIPTS := attach attach-many detach detach-many detach-all set-vlan seed-demo
TEST_GUESTS := hostile noop probe ungranted
# The scripts are signed with this key. The repository's is a TEST key, its
# secret is public: deployments sign with their own (make build SIGNING_KEY=...)
# and trust only their own public keys (/etc/ovs-run/trusted-keys).
SIGNING_KEY ?= keys/test/ovs-run-test-only.key

.PHONY: all build deps wasm-target test demo bench lint fmt clean

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

test: deps build
	bash tests/run-tests.sh

demo: deps build
	bash tests/demo.sh

# make bench N=1000, or BENCH_NS="10 100 1000": see tests/bench.sh.
N ?= 100
bench: deps build
	BENCH_NS="$(or $(BENCH_NS),$(N))" bash tests/bench.sh

lint:
	cargo fmt --all --check
	cargo clippy --release -p ovs-run --all-targets -- -D warnings
	cargo clippy --profile script --target wasm32-wasip2 $(addprefix -p ,ovs-run-sdk $(SCRIPTS) $(TEST_GUESTS)) -- -D warnings

fmt:
	cargo fmt --all

clean:
	cargo clean
	rm -f scripts/*.wasm tests/guests/*.wasm
