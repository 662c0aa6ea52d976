#!/usr/bin/env bash
# Builds rrt's Debian package, target/debian/rrt_<version>_<arch>.deb: the binary, its manual
# pages, shell completions (bash, zsh, fish) and the systemd user unit (enable it per user with
# `systemctl --user enable --now rrt`). `--dev` packages the debug build (for the test), else
# the release build. Installs cargo-deb if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
if [[ ${1:-} == --dev ]]; then
    profile=dev
fi
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --version "=3.8.0"

cargo build --locked -p rrt --profile "$profile"
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
binary="$target_dir/$([[ $profile == dev ]] && echo debug || echo release)/rrt"

assets="$(dirname "$binary")/deb-assets"
rm -rf "$assets"
mkdir -p "$assets/man"
"$binary" man --dir "$assets/man"
"$binary" completions bash > "$assets/rrt.bash"
"$binary" completions zsh > "$assets/_rrt"
"$binary" completions fish > "$assets/rrt.fish"
# The packaged unit runs the packaged binary; the desktop hands the user manager its display.
"$binary" service install --print --exec /usr/bin/rrt --no-display-env > "$assets/rrt.service"

cargo deb --no-build --locked -p rrt --profile "$profile"
