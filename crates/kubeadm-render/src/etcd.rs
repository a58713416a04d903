//! The local etcd static Pod (upstream `phases/etcd/local.go`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use kubeadm_api::config::InitConfig;
use kubeadm_api::v1beta4::{Arg, LocalEtcd};
use kubeadm_api::{images, net};

use crate::args::{self, arg};
use crate::staticpod::{self, Endpoint, Mounts};

/// The annotation recording etcd's client URL.
pub const ADVERTISE_CLIENT_URLS_ANNOTATION: &str =
    "kubeadm.kubernetes.io/etcd.advertise-client-urls";
/// The same fact on a control-plane Node in controlPlaneMode: systemd, where no etcd mirror
/// Pod exists to carry it (kubeadm-rs's own annotation; a control-plane join reads it).
pub const NODE_CLIENT_URLS_ANNOTATION: &str = "kubeadm-rs.io/etcd.advertise-client-urls";
/// etcd's client port.
pub const CLIENT_PORT: u16 = 2379;
/// etcd's peer port.
pub const PEER_PORT: u16 = 2380;
/// etcd's metrics (and health) port.
pub const METRICS_PORT: u16 = 2381;

fn loopback(cfg: &InitConfig) -> &'static str {
    if cfg.advertise_ip().is_some_and(|ip| ip.is_ipv6()) {
        "::1"
    } else {
        "127.0.0.1"
    }
}

/// `https://<advertise>:2379`.
pub fn client_url(cfg: &InitConfig) -> String {
    format!(
        "https://{}",
        net::join_host_port(&cfg.init.local_api_endpoint.advertise_address, CLIENT_PORT)
    )
}

/// `https://<advertise>:2380`.
pub fn peer_url(cfg: &InitConfig) -> String {
    format!(
        "https://{}",
        net::join_host_port(&cfg.init.local_api_endpoint.advertise_address, PEER_PORT)
    )
}

/// etcd's default flags for this node, before `extraArgs`. `initial_cluster` lists
/// `(name, peer URL)` of every member when joining an existing cluster; empty for a new one.
pub fn default_args(
    cfg: &InitConfig,
    local: &LocalEtcd,
    initial_cluster: &[(String, String)],
) -> Vec<Arg> {
    let info = cfg.info();
    let cd = &cfg.cluster.certificates_dir;
    let lo = loopback(cfg);
    let mut a = vec![
        arg("name", cfg.node_name()),
        arg(
            "listen-client-urls",
            format!(
                "https://{},{}",
                net::join_host_port(lo, CLIENT_PORT),
                client_url(cfg)
            ),
        ),
        arg("advertise-client-urls", client_url(cfg)),
        arg("listen-peer-urls", peer_url(cfg)),
        arg("initial-advertise-peer-urls", peer_url(cfg)),
        arg("data-dir", local.data_dir.clone()),
        arg("cert-file", format!("{cd}/etcd/server.crt")),
        arg("key-file", format!("{cd}/etcd/server.key")),
        arg("trusted-ca-file", format!("{cd}/etcd/ca.crt")),
        arg("client-cert-auth", "true"),
        arg("peer-cert-file", format!("{cd}/etcd/peer.crt")),
        arg("peer-key-file", format!("{cd}/etcd/peer.key")),
        arg("peer-trusted-ca-file", format!("{cd}/etcd/ca.crt")),
        arg("peer-client-cert-auth", "true"),
        arg("snapshot-count", "10000"),
        arg(
            "listen-metrics-urls",
            format!("http://{}", net::join_host_port(lo, METRICS_PORT)),
        ),
    ];
    if let Some((name, value)) = info.etcd_initial_corrupt_check() {
        a.push(arg(name, value));
    }
    if let Some(name) = info.etcd_watch_progress_flag() {
        a.push(arg(name, "5s"));
    }
    if initial_cluster.is_empty() {
        args::set(
            &mut a,
            "initial-cluster",
            format!("{}={}", cfg.node_name(), peer_url(cfg)),
        );
    } else {
        let members: Vec<String> = initial_cluster
            .iter()
            .map(|(n, u)| format!("{n}={u}"))
            .collect();
        args::set(&mut a, "initial-cluster", members.join(","));
        args::set(&mut a, "initial-cluster-state", "existing");
    }
    a
}

/// Where the probes reach etcd: the first `listen-metrics-urls` entry (the operator's if set),
/// with a missing host replaced by loopback.
pub fn probe_endpoint(cfg: &InitConfig, local: &LocalEtcd) -> Endpoint {
    let lo = loopback(cfg);
    let mut ep = Endpoint {
        host: lo.to_string(),
        port: i32::from(METRICS_PORT),
        scheme: "HTTP",
        named: cfg.info().probe_named_port(),
    };
    let first = args::get(&local.extra_args, "listen-metrics-urls")
        .and_then(|urls| urls.split(',').next())
        .and_then(staticpod::url_host_port);
    if let Some((host, port, scheme)) = first {
        if !host.is_empty() {
            ep.host = host;
        }
        if let Some(p) = port {
            ep.port = p;
        }
        ep.scheme = if scheme == "https" { "HTTPS" } else { "HTTP" };
    }
    ep
}

/// The etcd static Pod for this node.
pub fn pod(cfg: &InitConfig, local: &LocalEtcd, initial_cluster: &[(String, String)]) -> Pod {
    let info = cfg.info();
    let mut mounts = Mounts::new();
    staticpod::add(
        &mut mounts,
        staticpod::host_mount("etcd-data", &local.data_dir, "DirectoryOrCreate", false),
    );
    let certs = format!("{}/etcd", cfg.cluster.certificates_dir);
    staticpod::add(
        &mut mounts,
        staticpod::host_mount("etcd-certs", &certs, "DirectoryOrCreate", false),
    );
    let mut command = vec!["etcd".to_string()];
    command.extend(args::to_command(
        &default_args(cfg, local, initial_cluster),
        &local.extra_args,
    ));
    let ep = probe_endpoint(cfg, local);
    let (live, ready, start) = info.etcd_probe_paths();
    let timeout = crate::controlplane::health_check_timeout(cfg);
    let container = Container {
        name: "etcd".into(),
        image: Some(images::etcd_image(&cfg.cluster, info)),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(command),
        resources: Some(staticpod::requests("100m", Some("100Mi"))),
        ports: staticpod::probe_ports(&ep),
        liveness_probe: Some(staticpod::liveness(&ep, live)),
        readiness_probe: ready.map(|p| staticpod::readiness(&ep, p)),
        startup_probe: Some(staticpod::startup(&ep, start, timeout)),
        env: staticpod::env(&[], &local.extra_envs),
        ..Default::default()
    };
    let annotations = BTreeMap::from([(
        ADVERTISE_CLIENT_URLS_ANNOTATION.to_string(),
        client_url(cfg),
    )]);
    staticpod::component_pod(container, &mounts, annotations, info.static_pod_priority())
}
