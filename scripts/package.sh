#!/bin/sh
# `make package`: builds the Debian package (dpkg-buildpackage -us -uc -b) from
# a copy of the sources in build/deb/src, so that the build's `make clean`
# cannot touch this tree and the .deb lands in build/deb/, never in this
# tree's parent. The copy holds what git tracks plus new files git does not
# ignore (a tree without git is copied whole, less build/), and a REVISION
# file with the git revision for `levee --version`.
set -eu
cd "$(dirname "$0")/.."

out=build/deb
rm -rf "$out"
mkdir -p "$out/src"
if git rev-parse --git-dir >/dev/null 2>&1; then
    git ls-files --cached --others --exclude-standard | while IFS= read -r f; do
        [ -e "$f" ] && cp -P --parents "$f" "$out/src/"
    done
    git rev-parse --short HEAD >"$out/src/REVISION"
else
    tar --exclude=./build --exclude=./.git -cf - . | tar -xf - -C "$out/src"
fi

jobs=$(nproc 2>/dev/null || echo 1)
cd "$out/src"
DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }parallel=$jobs" dpkg-buildpackage -us -uc -b
cd ..
echo "package: $(pwd)/$(ls levee_*.deb)"
