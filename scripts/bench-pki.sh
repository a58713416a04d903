#!/usr/bin/env bash
# Times `kubeadm init phase certs all` + `kubeconfig all` (release build, temp --rootfs) against an
# openssl-CLI script producing the same PKI (3 CAs, 7 leaves, sa pair, 5 kubeconfig client
# certs), for RSA-2048 and ECDSA-P256, in one run. Prints, over RUNS runs, the median wall time
# and the median CPU time (user+sys of the processes, which other jobs on a busy machine do not
# inflate as much as the wall time), and the same for `kubeadm init` running only the certs and
# kubeconfig phases in one process.
# BENCH_DIR picks the file system (default /tmp; /dev/shm shows the cost without disk fsyncs).
# Wall figures are only meaningful on an idle machine: check `uptime` first.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-7}"
cargo build --release -q -p kubeadm
K="$PWD/target/release/kubeadm"
TMP="$(mktemp -d -p "${BENCH_DIR:-/tmp}")"; trap 'rm -rf "$TMP"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {printf "%.0f", a[int((NR+1)/2)]*1000}'; }
TIMEFORMAT='%3R %3U %3S'

config() { # $1 algorithm
  cat > "$TMP/cfg-$1.yaml" <<YAML
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint: {advertiseAddress: 10.0.0.10}
nodeRegistration: {name: node1}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.33.0
encryptionAlgorithm: $1
YAML
}

run_kubeadm() { # $1 algorithm, $2 root
  "$K" init phase certs all --rootfs "$2" --config "$TMP/cfg-$1.yaml" >/dev/null
  "$K" init phase kubeconfig all --rootfs "$2" --config "$TMP/cfg-$1.yaml" >/dev/null
}

# Every init phase but certs and kubeconfig skipped: both in one process.
SKIP=preflight,etcd,control-plane,kubelet-start,wait-control-plane,upload-config,upload-certs,mark-control-plane,bootstrap-token,addon,show-join-command
run_kubeadm_init() { # $1 algorithm, $2 root
  "$K" init --rootfs "$2" --config "$TMP/cfg-$1.yaml" --skip-phases "$SKIP" >/dev/null
}

run_openssl() { # $1 algorithm, $2 root
  local d="$2/etc/kubernetes/pki" k="$2/etc/kubernetes" newkey
  mkdir -p "$d/etcd"
  if [ "$1" = RSA-2048 ]; then newkey=(-newkey rsa:2048); else newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256); fi
  ca() { openssl req -x509 "${newkey[@]}" -nodes -keyout "$d/$1.key" -out "$d/$1.crt" -subj "/CN=$2" -days 3650 \
           -addext "subjectAltName=DNS:$2" -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign" \
           -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null; }
  leaf() { # out ca subj eku [san]
    local ext=(-addext "keyUsage=critical,digitalSignature,keyEncipherment" -addext "extendedKeyUsage=$4" -addext "basicConstraints=critical,CA:FALSE")
    [ -n "${5:-}" ] && ext+=(-addext "subjectAltName=$5")
    openssl req -x509 "${newkey[@]}" -nodes -keyout "$1.key" -out "$1.crt" -subj "$3" -days 365 \
      -CA "$d/$2.crt" -CAkey "$d/$2.key" "${ext[@]}" 2>/dev/null; }
  ca ca kubernetes
  leaf "$d/apiserver" ca /CN=kube-apiserver serverAuth \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:node1,IP:10.96.0.1,IP:10.0.0.10"
  leaf "$d/apiserver-kubelet-client" ca "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  ca front-proxy-ca front-proxy-ca
  leaf "$d/front-proxy-client" front-proxy-ca /CN=front-proxy-client clientAuth
  ca etcd/ca etcd-ca
  leaf "$d/etcd/server" etcd/ca /CN=node1 serverAuth,clientAuth "DNS:localhost,DNS:node1,IP:10.0.0.10,IP:127.0.0.1,IP:::1"
  leaf "$d/etcd/peer" etcd/ca /CN=node1 serverAuth,clientAuth "DNS:localhost,DNS:node1,IP:10.0.0.10,IP:127.0.0.1,IP:::1"
  leaf "$d/etcd/healthcheck-client" etcd/ca "/O=system:masters/CN=kube-etcd-healthcheck-client" clientAuth
  leaf "$d/apiserver-etcd-client" etcd/ca "/O=system:masters/CN=kube-apiserver-etcd-client" clientAuth
  if [ "$1" = RSA-2048 ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/sa.key" 2>/dev/null
  else
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/sa.key" 2>/dev/null
  fi
  openssl pkey -in "$d/sa.key" -pubout -out "$d/sa.pub"
  for kc in "admin:/O=kubeadm:cluster-admins/CN=kubernetes-admin" "super-admin:/O=system:masters/CN=kubernetes-super-admin" \
            "kubelet:/O=system:nodes/CN=system:node:node1" "controller-manager:/CN=system:kube-controller-manager" "scheduler:/CN=system:kube-scheduler"; do
    local name="${kc%%:*}" subj="${kc#*:}"
    leaf "$TMP/client" ca "$subj" clientAuth
    cat > "$k/$name.conf" <<KC
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: $(base64 -w0 "$d/ca.crt")
    server: https://10.0.0.10:6443
  name: kubernetes
contexts:
- context: {cluster: kubernetes, user: $name}
  name: $name@kubernetes
current-context: $name@kubernetes
kind: Config
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 "$TMP/client.crt")
    client-key-data: $(base64 -w0 "$TMP/client.key")
KC
    chmod 600 "$k/$name.conf"
  done
}

printf "%-11s %-16s %8s %8s %10s\n" algorithm tool "wall ms" "cpu ms" "vs openssl"
for alg in RSA-2048 ECDSA-P256; do
  config "$alg"
  for tool in openssl kubeadm kubeadm_init; do
    : > "$TMP/times-$tool"
    for i in $(seq "$RUNS"); do
      root="$TMP/root-$tool-$alg-$i"; mkdir -p "$root"
      { time "run_$tool" "$alg" "$root" 2>> "$TMP/stderr"; } 2>> "$TMP/times-$tool"
      [ "$(find "$root" -name '*.crt' | wc -l)" -ge 10 ] || { echo "run_$tool produced too few certificates" >&2; exit 1; }
      rm -rf "$root"
    done
    wall=$(awk '{print $1}' "$TMP/times-$tool" | median)
    cpu=$(awk '{print $2 + $3}' "$TMP/times-$tool" | median)
    [ "$tool" = openssl ] && base=$wall
    printf "%-11s %-16s %8s %8s %9.1fx\n" "$alg" "$tool" "$wall" "$cpu" "$(echo "$base / $wall" | bc -l)"
  done
done
