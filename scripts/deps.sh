#!/bin/sh
# Installs the Debian packages levee needs to build, test, package and benchmark
# (the package: debhelper, lintian; systemd for systemd-analyze, man-db for
# the man-page checks).
# A no-op when all of them are present; runs `apt-get update` only if a package
# cannot be found in the current package lists.
set -eu

# clang builds the fuzz targets (CI runs them); libclang-rt-dev ships libFuzzer and the
# sanitizer runtimes for it (libclang_rt.fuzzer-x86_64.a, in libclang-rt-14-dev on
# Debian 12), which clang only recommends.
PKGS="build-essential pkg-config libuv1-dev node-llhttp libssl-dev libyaml-dev libpcre2-dev \
libhiredis-dev libsystemd-dev libnghttp2-dev scdoc redis-server libcriterion-dev \
python3 python3-pytest python3-requests python3-websockets python3-h2 nghttp2-client openssl curl chromium \
debhelper dpkg-dev fakeroot lintian systemd man-db clang libclang-rt-dev"

# Benchmarks need the peers; they are only installed when asked for.
if [ "${1:-}" = "--bench" ]; then
    PKGS="$PKGS wrk nginx-light haproxy"
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends $missing; then
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends $missing
fi
