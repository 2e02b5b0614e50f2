# Merges a fresh benchmark run into BENCHMARKS.md without losing what people wrote there.
#
#   awk -f scripts/merge_benchmarks.awk NEW_RUN OLD_BENCHMARKS > MERGED
#
# The run's output (NEW_RUN) is split into sections at its `##`/`###` headings; it replaces
# the old header and every section's figures. In the old file, whatever follows a line
# `<!-- notes -->` up to the next heading (analysis, history, what was tried) is that
# section's notes: they follow the section's fresh figures, and notes of a section the run
# no longer prints stay, under their heading, at the end. Nothing else of the old file is
# kept, so figures never go stale next to new ones.

function trim(s) {
  sub(/\n+$/, "", s)
  return s
}

FNR == NR {
  if ($0 ~ /^###? /) {
    key = $0
    order[++sections] = key
    fresh[key] = $0
    next
  }
  if (key == "") header = header $0 "\n"
  else fresh[key] = fresh[key] "\n" $0
  next
}

{
  if ($0 ~ /^###? /) {
    old = $0
    in_notes = 0
    next
  }
  if ($0 == "<!-- notes -->") {
    in_notes = 1
    if (!(old in notes)) noted[++noted_count] = old
    notes[old] = notes[old] $0
    next
  }
  if (in_notes) notes[old] = notes[old] "\n" $0
}

END {
  printf "%s\n", trim(header)
  for (i = 1; i <= sections; i++) {
    k = order[i]
    printf "\n%s\n", trim(fresh[k])
    if (k in notes) {
      printf "\n%s\n", trim(notes[k])
      placed[k] = 1
    }
  }
  for (i = 1; i <= noted_count; i++) {
    k = noted[i]
    if (!(k in placed)) printf "\n%s\n\n%s\n", k, trim(notes[k])
  }
}
