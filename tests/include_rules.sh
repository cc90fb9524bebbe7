#!/usr/bin/env bash
# include_rules.sh ROOT: check every #include of ROOT/src against the tables of
# ROOT/docs/ARCHITECTURE.md (who may include whom). Prints each violation as
# FILE:LINE: ... and exits 1 if there is any, 0 otherwise.
#   include_rules.sh ROOT --self-test: also prove the check can fail, on a copy
#   of the tree with a forbidden include added.
set -euo pipefail
root=$1
doc=$root/docs/ARCHITECTURE.md

check() {  # check TREE: the rules of $doc over TREE/src
  local tree=$1
  find "$tree/src" -name '*.[ch]' | sort | awk -v doc="$doc" -v tree="$tree/" '
    BEGIN {
      # the two tables between their markers: | name | a b c | x.h y.h | ...
      while ((getline line < doc) > 0) {
        if (line ~ /<!-- include-rules/) { t = 1; continue }
        if (line ~ /<!-- include-exceptions/) { t = 2; continue }
        if (line ~ /<!-- \//) { t = 0; continue }
        if (!t || line !~ /^\|/ || line ~ /^\|---/ || line ~ /^\| (module|file) \|/) continue
        n = split(line, f, "|")
        name = f[2]; gsub(/ /, "", name)
        if (t == 1) {
          known[name] = 1
          m = split(f[3], a, " "); for (i = 1; i <= m; i++) mod[name "/" a[i]] = 1
          m = split(f[4], a, " "); for (i = 1; i <= m; i++) lib[name "/" a[i]] = 1
        } else {
          m = split(f[3], a, " "); for (i = 1; i <= m; i++) lib[name "/" a[i]] = 1
        }
      }
      # library headers that are ruled (others, like <stdio.h>, are free)
      split("mpi.h hdf5.h turbojpeg.h cblas.h libxsmm.h ini.h zlib.h jansson.h", L, " ")
      for (i in L) ruled[L[i]] = 1
      bad = 0
    }
    {
      path = $0; rel = substr(path, length(tree) + 1)   # src/<module>/...
      split(rel, p, "/"); m = p[2]
      if (!(m in known)) { printf "%s: module %s is not in the table of docs/ARCHITECTURE.md\n", rel, m; bad = 1 }
      ln = 0
      while ((getline line < path) > 0) {
        ln++
        if (line !~ /^[ \t]*#[ \t]*include/) continue
        if (match(line, /<[^>]+>/)) {
          h = substr(line, RSTART + 1, RLENGTH - 2)
          if ((h in ruled) && !((m "/" h) in lib) && !((rel "/" h) in lib)) {
            printf "%s:%d: <%s> may not be included in src/%s (docs/ARCHITECTURE.md)\n", rel, ln, h, m; bad = 1
          }
        } else if (match(line, /"[^"]+"/)) {
          h = substr(line, RSTART + 1, RLENGTH - 2)
          if (h ~ /^mpifit[\/.]/) continue                 # the public API
          n = split(h, q, "/")
          if (q[1] == "..") t = q[2]; else if (n > 1) t = q[1]; else t = m
          if (t != m && !((m "/" t) in mod)) {
            printf "%s:%d: \"%s\": src/%s may not include private headers of src/%s (docs/ARCHITECTURE.md)\n", rel, ln, h, m, t; bad = 1
          }
          else if (t != m && h ~ /_internal\.h$/) {
            printf "%s:%d: \"%s\": a module'"'"'s *_internal.h is for its own files only; use its interface header (docs/ARCHITECTURE.md)\n", rel, ln, h; bad = 1
          }
        }
      }
      close(path)
    }
    END { exit bad }'
}

check "$root"
echo "include_rules: every include of $root/src follows docs/ARCHITECTURE.md"
if [ "${2:-}" = --self-test ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/docs"
  cp "$doc" "$tmp/docs/"
  cp -r "$root/src" "$tmp/"
  # the ground floor reaching up to MPI, and a layer reaching into MPI itself
  printf '#include "../dist/comm.h"\n' >> "$tmp/src/core/alloc.c"
  printf '#include <mpi.h>\n' >> "$tmp/src/layers/relu.c"
  printf '#include "../train/fit_internal.h"\n' >> "$tmp/src/io/describe.c"
  if out=$(doc=$tmp/docs/ARCHITECTURE.md check "$tmp" 2>&1); then
    echo "include_rules: the self-test's forbidden includes were not caught" >&2
    exit 1
  fi
  echo "$out"
  grep -q 'src/core/alloc.c:.*src/core may not include private headers of src/dist' <<<"$out"
  grep -q 'src/layers/relu.c:.*<mpi.h> may not be included in src/layers' <<<"$out"
  grep -q 'src/io/describe.c:.*_internal.h is for its own files only' <<<"$out"
  echo "include_rules: self-test: the three forbidden includes added to a copy were caught"
fi
