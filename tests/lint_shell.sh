#!/usr/bin/env bash
# lint_shell.sh ROOT: shellcheck over every shell script of ROOT (launch/,
# tests/, .ci/): every finding of severity warning or worse, and at any
# severity SC2251, the `! cmd` that under `set -e` never stops a script (an
# assertion that cannot fail: use tests/e2e/assert.sh). Prints the findings
# as FILE:LINE:COL: ... and exits 1 if there is any, 0 otherwise; 77 (CTest's
# skip) without shellcheck (launch/install_deps.sh installs it).
#   lint_shell.sh ROOT --self-test: also prove the check can fail, on scripts
#   written to a temporary directory with one finding of each kind.
set -euo pipefail
root=$1

command -v shellcheck > /dev/null || {
  echo "lint_shell.sh: skipped: shellcheck not found (apt-get install shellcheck)"
  exit 77
}

scripts() {  # scripts DIR: the shell scripts under DIR's launch, tests, .ci
  local d f
  for d in launch tests .ci; do
    [ -d "$1/$d" ] || continue
    while IFS= read -r f; do
      case "$f" in
        *.sh) echo "$f" ;;
        *) head -n 1 "$f" | grep -q '^#!.*\(bash\|/sh\)' && echo "$f" ;;
      esac
    done < <(find "$1/$d" -type f \( -name '*.sh' -o -not -name '*.*' \) -not -path '*/corpus/*' \
               -not -path '*/regress/*' -not -path '*/hdf5/*' | sort)
  done
  return 0
}

check() {  # check DIR: 0 if its scripts are clean
  local files=() bad=0
  mapfile -t files < <(scripts "$1")
  [ ${#files[@]} -gt 0 ] || { echo "lint_shell.sh: no scripts under $1"; return 1; }
  # -x -P SCRIPTDIR: follow `source` directives relative to each script
  shellcheck -x -P SCRIPTDIR -S warning -f gcc "${files[@]}" || bad=1
  shellcheck -x -P SCRIPTDIR -f gcc --include=SC2251 "${files[@]}" || bad=1
  [ "$bad" -eq 0 ] && echo "lint_shell.sh: ${#files[@]} scripts under $1 clean"
  return "$bad"
}

check "$root"

if [ "${2:-}" = --self-test ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/tests"
  printf '#!/usr/bin/env bash\nset -e\n! grep -q x /dev/null\necho done\n' > "$tmp/tests/negated.sh"
  printf '#!/usr/bin/env bash\nset -e\nfor i in 1 2; do echo; done\n' > "$tmp/tests/unused.sh"
  for f in negated unused; do
    mkdir -p "$tmp/$f/tests"
    cp "$tmp/tests/$f.sh" "$tmp/$f/tests/"
    if check "$tmp/$f" > "$tmp/$f.out" 2>&1; then
      echo "lint_shell.sh: self-test: $f.sh passed the check: it cannot fail"
      exit 1
    fi
  done
  grep -q SC2251 "$tmp/negated.out" && grep -q SC2034 "$tmp/unused.out" || {
    echo "lint_shell.sh: self-test: the findings were not the expected ones:"
    cat "$tmp/negated.out" "$tmp/unused.out"
    exit 1
  }
  echo "lint_shell.sh: self-test: a negated assertion and an unused variable both fail the check"
fi
