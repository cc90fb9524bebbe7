# job.sh: the small training job the fault tests run (source it).
# small_job FILE DATA_DIR OUTPUT_DIR EPOCHS [VALIDATION] writes it: small_cnn
# at 32 px, batch 4, one thread; it ends with the [dist] section, so more
# [dist] keys can be appended to FILE.
small_job() {
  cat > "$1" <<INI
[model]
arch = small_cnn
input_size = 32
[data]
train = $2/train
validation = ${5:-$2/validation}
batch_size = 4
threads = 1
[train]
epochs = $4
verbose = 2
[output]
dir = $3
[dist]
threads = 1
INI
}

# np2 LOG SECONDS [VAR=VALUE...] -- MPIFIT ARGS...: run 2 ranks under
# mpiexec (the variables exported to it), output into LOG, killed after
# SECONDS (status 124 then); sets $rc and $took (seconds). Uses $mpiexec and
# $preflags.
np2() {
  local log=$1 limit=$2; shift 2
  local vars=()
  while [ "$1" != -- ]; do vars+=("${1%%=*}"); export "${1?}"; shift; done
  shift
  local t0; t0=$(date +%s)
  set +e
  # shellcheck disable=SC2086
  timeout -k 5 "$limit" "$mpiexec" -n 2 $preflags "$@" > "$log" 2>&1
  rc=$?
  set -e
  took=$(( $(date +%s) - t0 ))
  for v in "${vars[@]}"; do unset "$v"; done
}

# same_h5 A B OBJECT...: h5diff finds no difference in each object (bit for bit:
# h5diff compares values exactly unless told a tolerance)
same_h5() {
  local a=$1 b=$2; shift 2
  for o in "$@"; do
    h5diff "$a" "$b" "$o" > /dev/null || { h5diff "$a" "$b" "$o" | head -5; fail "$o differs between $a and $b"; }
  done
}
