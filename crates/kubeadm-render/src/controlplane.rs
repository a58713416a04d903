//! The kube-apiserver, kube-controller-manager and kube-scheduler static Pods (upstream
//! `phases/controlplane/manifests.go` and `volumes.go`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Container, Pod};
use kubeadm_api::config::InitConfig;
use kubeadm_api::v1beta4::Arg;
use kubeadm_api::{images, net};

use crate::args::{self, arg};
use crate::staticpod::{self, Endpoint, HostInfo, Mounts};

/// The annotation recording the API server's advertised endpoint.
pub const ADVERTISE_ADDRESS_ANNOTATION: &str =
    "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint";
/// The control-plane component names, in the order kubeadm writes them.
pub const COMPONENTS: [&str; 3] = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];
/// kube-controller-manager's secure port.
pub const CONTROLLER_MANAGER_PORT: i32 = 10257;
/// kube-scheduler's secure port.
pub const SCHEDULER_PORT: i32 = 10259;
/// Where kube-controller-manager finds FlexVolume drivers unless told otherwise.
pub const FLEXVOLUME_DIR: &str = "/usr/libexec/kubernetes/kubelet-plugins/volume/exec";

/// The startup probe budget: `timeouts.controlPlaneComponentHealthCheck`, else kubeadm-api's
/// default (4 minutes, as upstream).
pub fn health_check_timeout(cfg: &InitConfig) -> std::time::Duration {
    kubeadm_api::defaults::timeout(cfg.init.timeouts.as_ref(), |t| {
        t.control_plane_component_health_check
    })
}

fn is_v6(cfg: &InitConfig) -> bool {
    cfg.advertise_ip().is_some_and(|ip| ip.is_ipv6())
}

fn loopback(v6: bool) -> &'static str {
    if v6 { "::1" } else { "127.0.0.1" }
}

/// kube-apiserver's default flags, before `extraArgs`.
pub fn apiserver_args(cfg: &InitConfig) -> Vec<Arg> {
    let c = &cfg.cluster;
    let cd = &c.certificates_dir;
    let mut a = vec![
        arg(
            "advertise-address",
            cfg.init.local_api_endpoint.advertise_address.clone(),
        ),
        arg("allow-privileged", "true"),
        arg("authorization-mode", "Node,RBAC"),
        arg("client-ca-file", format!("{cd}/ca.crt")),
        arg("enable-admission-plugins", "NodeRestriction"),
        arg("enable-bootstrap-token-auth", "true"),
        arg(
            "kubelet-client-certificate",
            format!("{cd}/apiserver-kubelet-client.crt"),
        ),
        arg(
            "kubelet-client-key",
            format!("{cd}/apiserver-kubelet-client.key"),
        ),
        arg(
            "kubelet-preferred-address-types",
            "InternalIP,ExternalIP,Hostname",
        ),
        arg(
            "proxy-client-cert-file",
            format!("{cd}/front-proxy-client.crt"),
        ),
        arg(
            "proxy-client-key-file",
            format!("{cd}/front-proxy-client.key"),
        ),
        arg("requestheader-allowed-names", "front-proxy-client"),
        arg(
            "requestheader-client-ca-file",
            format!("{cd}/front-proxy-ca.crt"),
        ),
        arg("requestheader-extra-headers-prefix", "X-Remote-Extra-"),
        arg("requestheader-group-headers", "X-Remote-Group"),
        arg("requestheader-username-headers", "X-Remote-User"),
        arg("secure-port", cfg.bind_port().to_string()),
        arg(
            "service-account-issuer",
            format!("https://kubernetes.default.svc.{}", c.networking.dns_domain),
        ),
        arg("service-account-key-file", format!("{cd}/sa.pub")),
        arg("service-account-signing-key-file", format!("{cd}/sa.key")),
        arg(
            "service-cluster-ip-range",
            c.networking.service_subnet.clone(),
        ),
        arg("tls-cert-file", format!("{cd}/apiserver.crt")),
        arg("tls-private-key-file", format!("{cd}/apiserver.key")),
    ];
    match &c.etcd.external {
        Some(ext) => {
            a.push(arg("etcd-servers", ext.endpoints.join(",")));
            if !ext.ca_file.is_empty() {
                a.push(arg("etcd-cafile", ext.ca_file.clone()));
            }
            // The client pair is passed only when both halves are given.
            if !ext.cert_file.is_empty() && !ext.key_file.is_empty() {
                a.push(arg("etcd-certfile", ext.cert_file.clone()));
                a.push(arg("etcd-keyfile", ext.key_file.clone()));
            }
        }
        None => {
            a.push(arg(
                "etcd-servers",
                format!(
                    "https://{}",
                    net::join_host_port(loopback(is_v6(cfg)), crate::etcd::CLIENT_PORT)
                ),
            ));
            a.push(arg("etcd-cafile", format!("{cd}/etcd/ca.crt")));
            a.push(arg(
                "etcd-certfile",
                format!("{cd}/apiserver-etcd-client.crt"),
            ));
            a.push(arg(
                "etcd-keyfile",
                format!("{cd}/apiserver-etcd-client.key"),
            ));
            // Local etcd advertised elsewhere by the operator: the API server follows.
            let advertised = c
                .etcd
                .local
                .as_ref()
                .and_then(|l| args::get(&l.extra_args, "advertise-client-urls"));
            if let Some(urls) = advertised {
                args::set(&mut a, "etcd-servers", urls);
            }
        }
    }
    // With a structured authorization config the operator's file decides the modes.
    if args::get(&c.api_server.extra_args, "authorization-config").is_some() {
        a.retain(|x| x.name != "authorization-mode");
    }
    a
}

/// kube-controller-manager's default flags, before `extraArgs`.
/// `host.external_ca` (ca.crt without ca.key) empties the signing flags, so the CSR signer
/// cannot start without the CA key.
pub fn controller_manager_args(cfg: &InitConfig, host: &HostInfo) -> Vec<Arg> {
    let c = &cfg.cluster;
    let cd = &c.certificates_dir;
    let kubeconfig = "/etc/kubernetes/controller-manager.conf";
    let mut a = vec![
        arg("authentication-kubeconfig", kubeconfig),
        arg("authorization-kubeconfig", kubeconfig),
        arg("bind-address", "127.0.0.1"),
        arg("client-ca-file", format!("{cd}/ca.crt")),
        arg("cluster-signing-cert-file", format!("{cd}/ca.crt")),
        arg("cluster-signing-key-file", format!("{cd}/ca.key")),
        arg("controllers", "*,bootstrapsigner,tokencleaner"),
        arg("kubeconfig", kubeconfig),
        arg("leader-elect", "true"),
        arg(
            "requestheader-client-ca-file",
            format!("{cd}/front-proxy-ca.crt"),
        ),
        arg("root-ca-file", format!("{cd}/ca.crt")),
        arg("service-account-private-key-file", format!("{cd}/sa.key")),
        arg("use-service-account-credentials", "true"),
    ];
    if host.external_ca {
        args::set(&mut a, "cluster-signing-cert-file", "");
        args::set(&mut a, "cluster-signing-key-file", "");
    }
    if !c.networking.pod_subnet.is_empty() {
        a.push(arg("allocate-node-cidrs", "true"));
        a.push(arg("cluster-cidr", c.networking.pod_subnet.clone()));
        if !c.networking.service_subnet.is_empty() {
            a.push(arg(
                "service-cluster-ip-range",
                c.networking.service_subnet.clone(),
            ));
        }
    }
    if !c.cluster_name.is_empty() {
        a.push(arg("cluster-name", c.cluster_name.clone()));
    }
    if cfg.info().insecure_port_zero() {
        // 1.22 turns the deprecated insecure port off; the flag is gone from 1.23's manifests.
        a.push(arg("port", "0"));
    }
    a
}

/// kube-scheduler's default flags, before `extraArgs`.
pub fn scheduler_args(cfg: &InitConfig) -> Vec<Arg> {
    let kubeconfig = "/etc/kubernetes/scheduler.conf";
    let mut a = vec![
        arg("authentication-kubeconfig", kubeconfig),
        arg("authorization-kubeconfig", kubeconfig),
        arg("bind-address", "127.0.0.1"),
        arg("kubeconfig", kubeconfig),
        arg("leader-elect", "true"),
    ];
    if cfg.info().insecure_port_zero() {
        // As for the controller-manager: 1.22 only.
        a.push(arg("port", "0"));
    }
    a
}

/// A probe host for a component bound to `bind` (an unspecified or absent address means loopback).
fn probe_host(bind: Option<&str>, v6: bool) -> String {
    match bind.map(str::parse::<IpAddr>) {
        Some(Ok(ip)) if !ip.is_unspecified() => ip.to_string(),
        Some(Ok(ip)) => loopback(ip.is_ipv6()).to_string(),
        _ => loopback(v6).to_string(),
    }
}

fn probe_port(extra: &[Arg], default: i32) -> i32 {
    args::get(extra, "secure-port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(default)
}

/// For external etcd, read-only mounts of the directories holding its CA and client pair
/// (`etcd-certs-0`, … in path order), unless a directory is already mounted (the certificates
/// dir, `/etc/ssl/certs`, the CA bundle dirs) or lies inside another one listed.
fn external_etcd_mounts(cfg: &InitConfig, mounts: &mut Mounts) {
    let Some(ext) = &cfg.cluster.etcd.external else {
        return;
    };
    let cd = &cfg.cluster.certificates_dir;
    let covered: Vec<&str> = staticpod::ca_cert_extra_dirs(cfg.info().minor)
        .iter()
        .copied()
        .chain(["/etc/ssl/certs", cd.as_str()])
        .collect();
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    for f in [&ext.ca_file, &ext.cert_file, &ext.key_file] {
        let Some(dir) = std::path::Path::new(f).parent().and_then(|d| d.to_str()) else {
            continue;
        };
        if f.is_empty() || dir.is_empty() || covered.iter().any(|c| dir.starts_with(c)) {
            continue;
        }
        if dirs.iter().any(|d| dir.starts_with(d.as_str())) {
            continue;
        }
        dirs.retain(|d| !d.starts_with(dir));
        dirs.insert(dir.to_string());
    }
    for (i, dir) in dirs.iter().enumerate() {
        staticpod::add(
            mounts,
            staticpod::host_mount(&format!("etcd-certs-{i}"), dir, "DirectoryOrCreate", true),
        );
    }
}

/// The static Pod of one control-plane component (`kube-apiserver`, `kube-controller-manager`
/// or `kube-scheduler`); `None` for any other name.
pub fn pod(cfg: &InitConfig, component: &str, host: &HostInfo) -> Option<Pod> {
    let c = &cfg.cluster;
    let minor = cfg.info().minor;
    let v6 = is_v6(cfg);
    let timeout = health_check_timeout(cfg);
    let mut mounts = Mounts::new();
    let certs = |m: &mut Mounts| {
        staticpod::add(
            m,
            staticpod::host_mount("ca-certs", "/etc/ssl/certs", "DirectoryOrCreate", true),
        );
        staticpod::add(
            m,
            staticpod::host_mount("k8s-certs", &c.certificates_dir, "DirectoryOrCreate", true),
        );
        staticpod::add_ca_dirs(m, minor, host);
    };
    let mut annotations = BTreeMap::new();
    let (defaults, extra_args, extra_volumes, extra_envs, cpu, ep, paths) = match component {
        "kube-apiserver" => {
            certs(&mut mounts);
            external_etcd_mounts(cfg, &mut mounts);
            let adv = &cfg.init.local_api_endpoint.advertise_address;
            annotations.insert(
                ADVERTISE_ADDRESS_ANNOTATION.to_string(),
                net::join_host_port(adv, cfg.bind_port()),
            );
            let ep = Endpoint {
                host: probe_host(Some(adv), v6),
                port: i32::from(cfg.bind_port()),
                scheme: "HTTPS",
                named: cfg.info().probe_named_port(),
            };
            let a = &c.api_server;
            (
                apiserver_args(cfg),
                &a.extra_args,
                &a.extra_volumes,
                &a.extra_envs,
                "250m",
                ep,
                ("/livez", Some("/readyz"), "/livez"),
            )
        }
        "kube-controller-manager" => {
            certs(&mut mounts);
            let cm = &c.controller_manager;
            let flex =
                args::get(&cm.extra_args, "flex-volume-plugin-dir").unwrap_or(FLEXVOLUME_DIR);
            staticpod::add(
                &mut mounts,
                staticpod::host_mount("flexvolume-dir", flex, "DirectoryOrCreate", false),
            );
            staticpod::add(
                &mut mounts,
                staticpod::host_mount(
                    "kubeconfig",
                    "/etc/kubernetes/controller-manager.conf",
                    "FileOrCreate",
                    true,
                ),
            );
            let ep = Endpoint {
                host: probe_host(args::get(&cm.extra_args, "bind-address"), v6),
                port: probe_port(&cm.extra_args, CONTROLLER_MANAGER_PORT),
                scheme: "HTTPS",
                named: cfg.info().probe_named_port(),
            };
            (
                controller_manager_args(cfg, host),
                &cm.extra_args,
                &cm.extra_volumes,
                &cm.extra_envs,
                "200m",
                ep,
                ("/healthz", None, "/healthz"),
            )
        }
        "kube-scheduler" => {
            let s = &c.scheduler;
            staticpod::add(
                &mut mounts,
                staticpod::host_mount(
                    "kubeconfig",
                    "/etc/kubernetes/scheduler.conf",
                    "FileOrCreate",
                    true,
                ),
            );
            let ep = Endpoint {
                host: probe_host(args::get(&s.extra_args, "bind-address"), v6),
                port: probe_port(&s.extra_args, SCHEDULER_PORT),
                scheme: "HTTPS",
                named: cfg.info().probe_named_port(),
            };
            (
                scheduler_args(cfg),
                &s.extra_args,
                &s.extra_volumes,
                &s.extra_envs,
                "100m",
                ep,
                ("/healthz", None, "/healthz"),
            )
        }
        _ => return None,
    };
    staticpod::add_extra(&mut mounts, extra_volumes);
    let mut command = vec![component.to_string()];
    command.extend(args::to_command(&defaults, extra_args));
    let container = Container {
        name: component.to_string(),
        image: Some(images::control_plane_image(c, &cfg.version, component)),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(command),
        resources: Some(staticpod::requests(cpu, None)),
        ports: staticpod::probe_ports(&ep),
        liveness_probe: Some(staticpod::liveness(&ep, paths.0)),
        readiness_probe: paths.1.map(|p| staticpod::readiness(&ep, p)),
        startup_probe: Some(staticpod::startup(&ep, paths.2, timeout)),
        env: staticpod::env(&host.proxy_env, extra_envs),
        ..Default::default()
    };
    Some(staticpod::component_pod(
        container,
        &mounts,
        annotations,
        cfg.info().static_pod_priority(),
    ))
}
