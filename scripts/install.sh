#!/usr/bin/env bash
# Builds kubeadm-rs in release mode, installs the `kubeadm` binary, and runs the main job:
# `kubeadm init --dry-run` with defaults (needs neither root nor a cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
if ! command -v cargo >/dev/null; then
  # A fresh Debian machine: a C compiler for aws-lc-rs, then the Rust toolchain.
  $SUDO apt-get update -qq
  $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential curl ca-certificates >/dev/null
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cc >/dev/null || { $SUDO apt-get update -qq && $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential >/dev/null; }
cargo install --locked --path crates/kubeadm --root "${PREFIX:-$HOME/.cargo}"
kubeadm version -o short
kubeadm init --dry-run
