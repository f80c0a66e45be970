#!/usr/bin/env bash
# The CMake package: install the built library into a temporary prefix, build
# examples/echo and examples/embed against it with find_package(cppchannels),
# and run them; with `subdir`, build examples/echo with add_subdirectory of
# the source tree.
# Usage: package_test.sh install|subdir BUILD_DIR SOURCE_DIR
set -euo pipefail
mode=$1 build=$2 src=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Share the compiler cache with the main build: same flags, same objects.
export CCACHE_BASEDIR=$src CCACHE_NOHASHDIR=1
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
common=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
command -v ccache >/dev/null && common+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [[ $mode == install ]]; then
  cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log"
  for f in include/channels/channels.hpp include/channels/async_consumer.hpp \
           lib/cmake/cppchannels/cppchannelsConfig.cmake lib/cmake/cppchannels/cppchannelsConfigVersion.cmake; do
    [[ -f $tmp/prefix/$f ]] || { echo "FAIL: the install has no $f"; exit 1; }
  done
  ls "$tmp"/prefix/lib*/libchannels.a >/dev/null || { echo "FAIL: the install has no libchannels.a"; exit 1; }
  cmake -S "$src/examples/echo" -B "$tmp/echo" "${gen[@]}" "${common[@]}" -DCMAKE_PREFIX_PATH="$tmp/prefix" >"$tmp/configure.log" \
    || { cat "$tmp/configure.log"; exit 1; }
else
  cmake -S "$src/examples/echo" -B "$tmp/echo" "${gen[@]}" "${common[@]}" -DCPPCHANNELS_SOURCE_DIR="$src" >"$tmp/configure.log" \
    || { cat "$tmp/configure.log"; exit 1; }
fi
cmake --build "$tmp/echo" --parallel 2 >"$tmp/build.log" || { tail -50 "$tmp/build.log"; exit 1; }
out=$("$tmp/echo/echo_app" --port 0 --self-test)
echo "echo_app said: $out"
[[ $out == "echo: hi" ]]
if [[ $mode == install ]]; then
  # examples/embed: the server on the program's own io_context, from the package.
  cmake -S "$src/examples/embed" -B "$tmp/embed" "${gen[@]}" "${common[@]}" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
    >"$tmp/configure-embed.log" || { cat "$tmp/configure-embed.log"; exit 1; }
  cmake --build "$tmp/embed" --parallel 2 >"$tmp/build-embed.log" || { tail -50 "$tmp/build-embed.log"; exit 1; }
  "$tmp/embed/embed_app" --self-test || { echo "FAIL: embed_app --self-test"; exit 1; }
  echo "2 passed, 0 failed"
  exit 0
fi
echo "1 passed, 0 failed"
