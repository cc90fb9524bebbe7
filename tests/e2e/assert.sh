# shellcheck shell=bash
# assert.sh: assertions for the e2e shell tests (source it). Under `set -e`,
# a negated command and every command but the last of an and-list never stop
# a script: a status test chained before a grep passes when the status is
# wrong. These helpers exit non-zero themselves, naming what failed.
fail() { echo "ASSERTION FAILED: $*" >&2; exit 1; }
# expect_status WANT GOT [what]
expect_status() { [ "$2" -eq "$1" ] || fail "exit status $2, expected $1${3:+ ($3)}"; }
# expect_grep PATTERN FILE: a line of FILE matches the basic regex PATTERN
expect_grep() { grep -q -e "$1" "$2" || fail "no line of $2 matches '$1'"; }
# expect_no_grep PATTERN FILE
expect_no_grep() { if grep -q -e "$1" "$2"; then fail "$2 has a line matching '$1'"; fi; }
# expect_file FILE: exists and is not empty
expect_file() { [ -s "$1" ] || fail "$1 is missing or empty"; }
# expect_same_h5 FILE_A FILE_B OBJECT...: h5diff finds no difference in each object
# (bit for bit: h5diff compares values exactly unless told a tolerance)
expect_same_h5() {
  local a=$1 b=$2; shift 2
  for o in "$@"; do
    h5diff "$a" "$b" "$o" > /dev/null || { h5diff "$a" "$b" "$o" | head -5; fail "$o differs between $a and $b"; }
  done
}
