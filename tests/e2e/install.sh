#!/usr/bin/env bash
# install.sh BUILD_DIR SOURCE_DIR: `cmake --install` into a scratch prefix, then
# build and run a user's program against it twice: with find_package(mpifit)
# and with pkg-config mpifit.
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -x "$work/prefix/bin/mpifit"
test -f "$work/prefix/include/mpifit.h"
"$work/prefix/bin/mpifit" --version

cmake -S "$src/tests/e2e/consumer" -B "$work/c1" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/c1" >/dev/null
"$work/c1/consumer"

pc=$(find "$work/prefix" -name mpifit.pc -print -quit)
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
# shellcheck disable=SC2046
cc -std=c11 -o "$work/c2" "$src/tests/e2e/consumer/main.c" $(pkg-config --cflags mpifit) \
   $(pkg-config --libs --static mpifit)
"$work/c2"
echo "install: find_package and pkg-config consumers both built and ran"
