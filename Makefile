# ovs-run: `make demo` tries it end to end in a private sandbox, `make test`
# runs every test (starting the daemons they need), `make build` builds the
# binary and scripts/*.wasm, `make guests` the Python, JavaScript and C
# scripts (scripts/{python,js,c}/*.wasm), `make bench` runs the benchmark.

SHELL := /bin/bash
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
BIN := $(TARGET_DIR)/release/ovs-run
WASM_DIR := $(TARGET_DIR)/wasm32-wasip2/script
SCRIPTS := attach detach detach-all set-vlan seed-demo
TEST_GUESTS := hostile probe ungranted

# Scripts in other languages: sources under scripts/LANG/, built by
# guest-sdk/build-guest (which installs each toolchain on first use).
GUEST_SCRIPTS := attach detach seed-demo
GUEST_WASM := $(foreach l,python js c,$(addprefix scripts/$(l)/,$(addsuffix .wasm,$(GUEST_SCRIPTS)))) \
	tests/guests/python/hostile.wasm tests/guests/js/raises.wasm
WIT := wit/ovs-run.wit

.PHONY: all build deps wasm-target guests guest-toolchains test demo bench lint fmt clean

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
	@for g in $(TEST_GUESTS); do cp "$(WASM_DIR)/$$(echo $$g | tr - _).wasm" tests/guests/$$g.wasm; done
	@if [ "$(TARGET_DIR)" != "$(CURDIR)/target" ]; then mkdir -p target/release && ln -sf "$(BIN)" target/release/ovs-run; fi
	@echo "built $(BIN) and scripts/{$(shell echo $(SCRIPTS) | tr ' ' ',')}.wasm"

# Toolchains first (one at a time: they share apt and the network), then
# the components two at a time (componentize-py and componentize-qjs use one core each).
guests: guest-toolchains
	@$(MAKE) --no-print-directory -s -j2 $(GUEST_WASM)

guest-toolchains:
	cargo build --release -p ovs-run-componentize
	@for l in python js c; do guest-sdk/build-guest $$l --install; done

.SECONDEXPANSION:
PY_SDK := guest-sdk/python/ovs_run.py guest-sdk/python/requirements.txt $(WIT)
JS_SDK := guest-sdk/js/ovs-run.js guest-sdk/js/wit/world.wit guest-sdk/js/package-lock.json $(WIT)
# (A pattern rule with two targets would be one recipe making both: one rule per directory.)
scripts/python/%.wasm: scripts/python/$$(subst -,_,$$*).py $(PY_SDK)
	@guest-sdk/build-guest python $< $@

tests/guests/python/%.wasm: tests/guests/python/%.py $(PY_SDK)
	@guest-sdk/build-guest python $< $@

scripts/js/%.wasm: scripts/js/%.js $(JS_SDK)
	@guest-sdk/build-guest js $< $@

tests/guests/js/%.wasm: tests/guests/js/%.js $(JS_SDK)
	@guest-sdk/build-guest js $< $@

scripts/c/%.wasm: scripts/c/%.c guest-sdk/c/ovsrun.c guest-sdk/c/ovsrun.h $(WIT)
	@guest-sdk/build-guest c $< $@

test: deps build guests
	bash tests/run-tests.sh

demo: deps build
	bash tests/demo.sh

bench: deps build
	bash tests/bench.sh

lint:
	cargo fmt --all --check
	cargo clippy --release -p ovs-run -p ovs-run-componentize --all-targets -- -D warnings
	cargo clippy --profile script --target wasm32-wasip2 $(addprefix -p ,ovs-run-sdk $(SCRIPTS) $(TEST_GUESTS)) -- -D warnings

fmt:
	cargo fmt --all

clean:
	cargo clean
	rm -f scripts/*.wasm scripts/*/*.wasm tests/guests/*.wasm tests/guests/*/*.wasm
