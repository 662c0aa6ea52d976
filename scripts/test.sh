#!/usr/bin/env bash
# Every check CI runs, from a clean clone: installs what the tests need, then formatting, lints,
# docs, and every test (unit, integration, end-to-end, doc tests). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# System tools the tests use, as command → Debian package.
declare -A packages=(
    [tmux]=tmux
    [python3]=python3
    [ip]=iproute2
    [nft]=nftables
    [Xvfb]=xvfb
    [xclip]=xclip
    [sway]=sway
    [wl-copy]=wl-clipboard
    [setpriv]=util-linux
    [unshare]=util-linux
    [nsenter]=util-linux
    [openssl]=openssl
    [systemd-analyze]=systemd
)
missing=()
for command in "${!packages[@]}"; do
    command -v "$command" >/dev/null || missing+=("${packages[$command]}")
done
if ((${#missing[@]})); then
    echo "==> installing ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# python-zeroconf: a standard mDNS browser for the discovery test; prometheus_client: a
# standard OpenMetrics parser for the metrics test.
for module in zeroconf:zeroconf prometheus_client:prometheus_client; do
    for attempt in 1 2 3; do
        python3 -c "import ${module%%:*}" 2>/dev/null && break
        python3 -m pip install --quiet --root-user-action=ignore "${module##*:}" || sleep 5
    done
done

# The swarm test runs 30 daemons (100 with RRT_SWARM_DAEMONS=100), each watching its mesh
# directory with an inotify instance: more than the default 128 per user once other tests run
# beside it.
if [[ $(cat /proc/sys/fs/inotify/max_user_instances) -lt 1024 ]]; then
    sysctl -qw fs.inotify.max_user_instances=1024
fi

echo "==> cargo fmt"
cargo fmt --all --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

echo "==> cargo test"
# No test reads this machine's own config file (~/.config/rrt/config.toml).
XDG_CONFIG_HOME="$(mktemp -d)"
export XDG_CONFIG_HOME
cargo test --workspace --locked

echo "==> the Debian package"
scripts/test-deb.sh

echo "==> the crates, packaged for crates.io"
cargo package --workspace --no-verify --allow-dirty --quiet
