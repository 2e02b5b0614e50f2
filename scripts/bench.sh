#!/usr/bin/env bash
# Runs the benchmarks and writes their figures into BENCHMARKS.md. Figures are medians of
# repeated runs, with ratios against a baseline measured in the same run: this machine is
# small and noisy, so absolute numbers move between runs while ratios hold. Notes written
# by hand under a section's `<!-- notes -->` line are kept (scripts/merge_benchmarks.awk).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo bench --features ssr --bench line_protocol --bench http_ingest --bench store --bench live --bench fanout --bench redis --no-run
# The HTTP benchmark drives the release server binary as a separate process.
cargo build --release --no-default-features --features ssr --bin livechart
pin=()
# One core for the parser: it is single-threaded, and pinning keeps the scheduler out of it.
command -v taskset >/dev/null && pin=(taskset -c 1)

{
  echo "# Benchmarks"
  echo
  echo "Written by \`make bench\` (\`scripts/bench.sh\`) on $(date -u +%F) on $(nproc) cores"
  echo "($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(rustc --version)."
  echo "Medians of repeated runs; ratios are against a baseline measured in the same run."
  echo "Each section's figures come from that run; the notes after them (analysis, earlier"
  echo "runs, what was tried) are written by hand and dated, and \`make bench\` keeps them."
  echo
  echo "Targets: parser ≥ 10 M lines/s on one core; HTTP ingest ≥ 1 M points/s and ≥ 1.5×"
  echo "VictoriaMetrics (issue 3); durable ingest ≥ 1 M points/s relaxed and ≥ 500 k fsync;"
  echo "≤ 4 bytes/point; restart serving within 2 s with 100 M points stored; history at 2 000"
  echo "columns ≤ 20 ms over 10 M and 100 M points, independent of the count (issue 4); live"
  echo "fan-out p99 ≤ 10 ms at 5 000 subscribers, ≥ 10× socket.io at equal p99, ≤ 8 KB per idle"
  echo "connection (issue 5); ≤ 8 ms per frame at 1 M points, faster than uPlot, ≤ 250 KB"
  echo "brotli downloaded (issue 6); ≤ 2 ms added p99 by the Redis hop and ≥ 300 k points/s"
  echo "through one Redis (issue 7)."
  echo "Compare with the figures below; they are not all met yet."
  echo
  echo "Commands: \`${pin[*]:+${pin[*]} }cargo bench --features ssr --bench line_protocol\`,"
  echo "\`cargo bench --features ssr --bench http_ingest\` (VictoriaMetrics from Debian's"
  echo "\`victoria-metrics\` package as the baseline, on loopback) and"
  echo "\`cargo bench --features ssr --bench store\`, \`cargo bench --features ssr --bench live\`,"
  echo "\`cargo bench --features ssr --bench fanout\` (socket.io from npm as the baseline),"
  echo "\`cargo bench --features ssr --bench redis\` (redis-server from Debian)."
  echo
  "${pin[@]}" cargo bench --quiet --features ssr --bench line_protocol
  echo
  cargo bench --quiet --features ssr --bench http_ingest
  echo
  cargo bench --quiet --features ssr --bench store
  echo
  cargo bench --quiet --features ssr --bench live
  echo
  cargo bench --quiet --features ssr --bench fanout
  echo
  cargo bench --quiet --features ssr --bench redis
  echo
  # The chart: the shipped client's download, then frame times through a client built with
  # the benchmark's hook (feature bench-hook). After every cargo bench above, because those
  # rebuild target/release/livechart without the site settings cargo-leptos compiles in.
  {
    cargo leptos build --release --precompress
    rm -rf target/bench-pkg && cp -r target/site/pkg target/bench-pkg
    cargo leptos build --release --precompress --lib-features hydrate,bench-hook
  } >&2
  node bench/browser/frames.js
} > target/bench-run.md
awk -f scripts/merge_benchmarks.awk target/bench-run.md BENCHMARKS.md > BENCHMARKS.md.new
mv BENCHMARKS.md.new BENCHMARKS.md
# Leave the shipped client in target/site.
cargo leptos build --release --precompress --bin-features ssr,embed
cat BENCHMARKS.md
