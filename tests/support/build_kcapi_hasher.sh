#!/usr/bin/env bash
# Build the reference kcapi-hasher that tests/tools/test_kcapi_hasher.py compares `kcapi-hashlib sha256hmac ...`
# against: libkcapi 1.4.0's apps/kcapi-hasher.c from Debian bookworm's source package (Debian's kcapi-tools does
# not ship kcapi-hasher). Idempotent: once built, it only prints the binary's path.
#
# Only kcapi-hasher is built, with gcc directly (no autotools): apps/kcapi-hasher.c, apps/app-internal.c and the
# three library files it needs, statically into one binary, with configure's defaults for what the hasher reads
# (CHECK_PREFIX ".", CHECK_SUFFIX "hmac", no CHECK_DIR: the .FILE.hmac files sit beside FILE). It runs where
# AF_ALG is: inside the VM (python3 -m kcapi_hashlib vm -- ...), which sees this host's files.
#
# The source comes through apt with a private configuration (a deb-src line, lists and cache under the build
# directory), so the system's apt setup is untouched; the tarball is checked against the sha256 below (Debian's
# .dsc for libkcapi 1.4.0-1). Output: $(PYTHONPATH=dev/vm python3 -c 'from kcapi_vm.cache import cache_dir; print(cache_dir())')
# /kcapi-hasher-1.4.0/kcapi-hasher (default ~/.cache/kcapi_hashlib/uml/...), or $KCAPI_HASHLIB_KCAPI_HASHER.
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION=1.4.0
ORIG=libkcapi_${VERSION}.orig.tar.xz
SHA256=644b47593b3f27f08add7a8808ccdbe569a2f331d70fb8b52551e57379b917fa
cache=$(PYTHONPATH=dev/vm python3 -c 'from kcapi_vm.cache import cache_dir; print(cache_dir())')
out=${KCAPI_HASHLIB_KCAPI_HASHER:-$cache/kcapi-hasher-$VERSION/kcapi-hasher}
if [ -x "$out" ]; then
    echo "$out"
    exit 0
fi
dir=$(dirname "$out")
mkdir -p "$dir"
work=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# gcc, libc's and Linux's headers (linux/if_alg.h), xz for the tarball: the VM runner's own check, which installs
# missing ones with apt-get only where KCAPI_HASHLIB_VM_INSTALL=1 and otherwise names them (exit 2).
PYTHONPATH=dev/vm python3 -c '
import sys
from kcapi_vm import VMError, ensure_packages
try:
    ensure_packages({"gcc": "gcc", "xz": "xz-utils", "/usr/include/stdio.h": "libc6-dev",
                     "/usr/include/linux/if_alg.h": "linux-libc-dev"})
except VMError as e:
    print(f"build_kcapi_hasher.sh: {e}", file=sys.stderr)
    sys.exit(e.code)
'

# The source package's upstream tarball, through a private apt setup (apt-get source --download-only also
# fetches the .dsc and Debian's patches tarball; only the upstream tarball is used, so a missing one is no error).
apt=$work/apt
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/state" "$apt/src"
: >"$apt/state/status"
echo "deb-src ${KCAPI_HASHLIB_DEBIAN_MIRROR:-http://deb.debian.org/debian} bookworm main" >"$apt/sources.list"
opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State=$apt/state" -o "Dir::State::Lists=$apt/lists" -o "Dir::State::status=$apt/state/status"
    -o "Dir::Cache=$apt/cache" -o APT::Sandbox::User=root)
apt-get -qq "${opts[@]}" update >&2
(cd "$apt/src" && apt-get -qq "${opts[@]}" source --download-only "libkcapi=$VERSION-1" >"$work/source.log" 2>&1) ||
    [ -f "$apt/src/$ORIG" ] || { cat "$work/source.log" >&2; exit 1; }
echo "$SHA256  $apt/src/$ORIG" | sha256sum -c --quiet - >&2
tar -xJf "$apt/src/$ORIG" -C "$work"
src=$work/libkcapi-$VERSION

# configure.ac's version macros and its defaults for the hasher; -ldl for its dlopen of libkcapi.so (FIPS
# self-check only, which a static build cannot pass: run it where fips_enabled is 0 or absent).
gcc -std=gnu99 -O2 -fwrapv -DKCAPI_MAJVERSION=1 -DKCAPI_MINVERSION=4 -DKCAPI_PATCHLEVEL=0 \
    -DCHECK_PREFIX='"."' -DCHECK_SUFFIX='"hmac"' -DHAVE_SECURE_GETENV -DHAVE_GETRANDOM -I"$src/lib" \
    "$src/apps/kcapi-hasher.c" "$src/apps/app-internal.c" \
    "$src/lib/kcapi-kernel-if.c" "$src/lib/kcapi-utils.c" "$src/lib/kcapi-md.c" \
    -ldl -o "$work/kcapi-hasher"
mv "$work/kcapi-hasher" "$out"
echo "$out"
