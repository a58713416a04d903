#!/usr/bin/env bash
# Wall time of `kubeadm upgrade apply` on the test cluster (the in-repo test API server, a
# real etcd run by the test kubelet from our manifest; `upgrade_e2e`'s bench_upgrade_apply),
# from start to return, split into waiting for other components (the kubelet restarting each
# static Pod and its health endpoint, the health-check Job) and our own work (everything
# else: reading the cluster, rendering, certificate renewal, backups, the etcd snapshot when
# etcd changes, uploads, addons). The binary measures its waits itself (`KUBEADM_TIMINGS`).
# RUNS patch upgrades (three static Pods swapped each), then one same-version apply (nothing
# swapped). Prints each run and the medians; the goal is our own work <= 1 s.
# Wall figures are only meaningful on an idle machine: check `uptime` first.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUNS="${RUNS:-5}"
PY_SCRIPTS="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
export PATH="$PY_SCRIPTS:$PATH"
KUBEADM_TEST_ETCD="${KUBEADM_TEST_ETCD:-$(command -v etcd)}"
export KUBEADM_TEST_ETCD
cargo build --release -q -p kubeadm
export KUBEADM_BENCH_BIN="$PWD/target/release/kubeadm"
OUT="$(mktemp)"; trap 'rm -f "$OUT"' EXIT
CARGO_INCREMENTAL=0 cargo test -q -p kubeadm --test upgrade_e2e bench_upgrade_apply \
  -- --ignored --nocapture --test-threads 1 | tee "$OUT" | grep '^BENCH' || true
grep -q '^BENCH' "$OUT" || { echo "the benchmark printed nothing" >&2; cat "$OUT" >&2; exit 1; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR) printf "%.3f", a[int((NR+1)/2)]}'; }
col() { # $1 kind, $2 field name (outside|wall|waiting|own)
  grep "^BENCH $1 " "$OUT" | awk -v f="$2" '{for (i = 1; i < NF; i++) if ($i == f) {v = $(i + 1); sub("s$", "", v); print v}}' | median
}
for kind in swap3 no-op; do
  echo "$kind: median wall $(col "$kind" outside)s (inside $(col "$kind" wall)s), waiting $(col "$kind" waiting)s, own work $(col "$kind" own)s"
done
