#!/usr/bin/env bash
# install_deps.sh: install the Debian 12 packages mpifit builds and runs with,
# only those missing (idempotent). Uses sudo when not root. Called by
# launch/quickstart.sh and tests/run.sh; safe to run by hand.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  openmpi-bin libopenmpi-dev          # MPI (mpirun, mpicc, libmpi)
  libopenblas-dev                     # BLAS
  libxsmm-dev                         # JIT kernels for small matrix products (1x1 convolutions)
  libhdf5-dev hdf5-tools              # HDF5 (+ h5dump, h5diff for tests)
  zlib1g-dev                          # crc32: whole-file checksums of checkpoints
  libturbojpeg0-dev                   # libjpeg-turbo's TurboJPEG API
  libinih-dev                         # INI config parser
  libjansson-dev                      # JSON parser: Keras model descriptions (model.to_json(), model_config)
  gnuplot-nox                         # mpifit plot (curves of a metrics file)
  python3-h5py                        # tests: metrics.h5 is readable from h5py during a run
  python3-pil fonts-dejavu-core       # tests, launch/digits.sh: rendered digits (launch/make_digits.py)
  clang-14 libclang-rt-14-dev         # tests/fuzz: libFuzzer and the sanitizer runtimes (clang's compiler-rt)
  libomp-14-dev                       # tests/fuzz: OpenMP for clang (the library uses it)
  gdb                                 # tests/fuzz/triage.py: the stack of an input that hangs
  shellcheck                          # tests/lint_shell.sh: the scripts' warnings and assertions that cannot fail
  slurm-wlm munge                     # tests/slurm: a one-node Slurm (slurmctld, slurmd, srun) for launch/slurm.sbatch
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#packages[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "install_deps: missing packages (${missing[*]}) and not root, and no sudo to install them" >&2
  exit 1
fi

echo "install_deps: installing ${missing[*]}"
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
