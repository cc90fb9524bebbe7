# shellcheck shell=bash
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

# jobs EPOCHS OUTPUT_KEYS NAME...: small_job for each NAME into $work/NAME.ini
# (output $work/NAME, data $data), with the [output] keys (sed text, e.g.
# 'checkpoint_every = 2\nkeep = 0') and a [dist] timeout of 120 s.
jobs() {
  local epochs=$1 keys=$2; shift 2
  : "${work:?jobs: set work (the directory of the test)}" "${data:?jobs: set data (the image folder)}"
  for name in "$@"; do
    small_job "$work/$name.ini" "$data" "$work/$name" "$epochs"
    sed -i "s/^\[output\]\$/[output]\n$keys/" "$work/$name.ini"
    echo "timeout = 120" >> "$work/$name.ini"
  done
}

# rank_pid PATTERN RANK [VAR=VALUE]: the pid of the MPI process of that rank
# whose command line matches PATTERN (and whose environment has VAR=VALUE);
# empty if none (yet)
rank_pid() {
  local q want=2
  [ -n "${3:-}" ] || want=1
  for q in $(pgrep -f "$1" || true); do
    if [ "$(tr '\0' '\n' < /proc/"$q"/environ 2>/dev/null | grep -c -x -e "OMPI_COMM_WORLD_RANK=$2" -e "${3:-OMPI_COMM_WORLD_RANK=$2}")" -ge "$want" ]; then
      echo "$q"; return
    fi
  done
}

# np2 LOG SECONDS [VAR=VALUE...] -- MPIFIT ARGS...: run 2 ranks under
# mpiexec (the variables exported to it), output into LOG, killed after
# SECONDS (status 124 then); sets $rc and $took (seconds). Uses $mpiexec and
# $preflags.
# shellcheck disable=SC2034 # rc and took are np2's results, read by the test that sources this file
np2() {
  local log=$1 limit=$2; shift 2
  : "${mpiexec:?np2: set mpiexec}" "${preflags?np2: set preflags (may be empty)}"
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

