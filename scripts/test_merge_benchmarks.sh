#!/usr/bin/env bash
# Checks scripts/merge_benchmarks.awk, which `make bench` uses to put a fresh run into
# BENCHMARKS.md: new figures replace old ones, and every hand-written note is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
merge() { awk -f scripts/merge_benchmarks.awk "$@"; }
# The figures of a file: every line outside the notes.
figures() { awk '/^###? /{n=0} /^<!-- notes -->$/{n=1} !n' "$1"; }
notes() { awk '/^###? /{n=0} /^<!-- notes -->$/{n=1} n' "$1"; }
fail() { echo "merge_benchmarks: $*" >&2; exit 1; }

# BENCHMARKS.md merged with its own figures is itself: `make bench` loses none of its notes.
figures BENCHMARKS.md > "$tmp/run.md"
merge "$tmp/run.md" BENCHMARKS.md | cmp -s - BENCHMARKS.md ||
  fail "BENCHMARKS.md would change when merged with its own figures"

cat > "$tmp/old.md" <<'MD'
# Benchmarks

Written on day 1.

### A

| x | 1 |

<!-- notes -->
Note on A, day 1.

### Gone

| y | 2 |

<!-- notes -->
Note on a section no run prints any more.

### B

| z | 3 |
MD
cat > "$tmp/new.md" <<'MD'
# Benchmarks

Written on day 2.

### A

| x | 10 |

### B

| z | 30 |

### C

| w | 40 |
MD
cat > "$tmp/want.md" <<'MD'
# Benchmarks

Written on day 2.

### A

| x | 10 |

<!-- notes -->
Note on A, day 1.

### B

| z | 30 |

### C

| w | 40 |

### Gone

<!-- notes -->
Note on a section no run prints any more.
MD
merge "$tmp/new.md" "$tmp/old.md" > "$tmp/got.md"
diff -u "$tmp/want.md" "$tmp/got.md" || fail "a run did not replace the figures and keep the notes"
merge "$tmp/new.md" "$tmp/got.md" | cmp -s - "$tmp/got.md" || fail "merging twice changed the file"
echo "merge_benchmarks: ok"
