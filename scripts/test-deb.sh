#!/usr/bin/env bash
# The Debian package, tested: built by scripts/deb.sh (the debug build, which the tests built
# already), installed with dpkg into a scratch root (its own dpkg database; the host's libc
# stands in for the root's), then run from there.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deb.sh --dev
version=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "rrt"))')
package=$(ls target/debian/rrt_"$version"-*_*.deb)

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
fail() { echo "package test: $*" >&2; exit 1; }
dpkg --root="$root" --force-depends -i "$package" >"$root/dpkg.log" 2>&1 ||
    { cat "$root/dpkg.log" >&2; fail "dpkg -i failed"; }

[[ $("$root/usr/bin/rrt" --version) == "rrt $version" ]] || fail "rrt --version from the package"
for file in usr/share/man/man1/rrt.1 usr/share/man/man1/rrt-daemon.1 \
    usr/share/bash-completion/completions/rrt usr/share/zsh/vendor-completions/_rrt \
    usr/share/fish/vendor_completions.d/rrt.fish usr/lib/systemd/user/rrt.service \
    usr/share/doc/rrt/copyright; do
    [[ -s "$root/$file" ]] || fail "$file is missing"
done
grep -qx 'ExecStart="/usr/bin/rrt" "daemon"' "$root/usr/lib/systemd/user/rrt.service" ||
    fail "the unit runs /usr/bin/rrt daemon"
dpkg --root="$root" -s rrt | grep -qx "Status: install ok installed" || fail "dpkg says it is installed"
echo "package test: $package installs and runs"
