#!/bin/sh
# deps.sh: make sure the Debian packages crashscope builds and tests with are present.
#
# Installs what is missing with apt-get when run as root; otherwise prints the exact
# install line and fails. Must never install anything that is not a Debian package.
set -eu

# build: compiler, cmake, and the four libraries the recorder and CLI link against.
BUILD_PKGS="gcc make cmake pkg-config libunwind-dev libsqlite3-dev zlib1g-dev libcurl4-openssl-dev libelf-dev libdw-dev"
# test: go tool pprof, sqlite3 shell, a C++ compiler for the exception test, python apps.
TEST_PKGS="g++ gdb golang-go sqlite3 python3 python3-flask gunicorn python3-uvicorn wrk"
# bench: heaptrack, compared side by side with the allocation sampler.
BENCH_PKGS="heaptrack"

want=$BUILD_PKGS
case "${1:-build}" in
test|demo) want="$BUILD_PKGS $TEST_PKGS" ;;
bench) want="$BUILD_PKGS $TEST_PKGS $BENCH_PKGS" ;;
esac

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "crashscope: missing Debian packages. Install them with:" >&2
	echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "crashscope: installing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
