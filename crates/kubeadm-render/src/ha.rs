//! The built-in control-plane endpoint's files (see `kubeadm_api::ha`): keepalived's
//! configuration and health check, haproxy's configuration, and the static Pods that run them
//! next to the API server.
//!
//! keepalived: every node starts as BACKUP with `nopreempt` (the VIP stays where it is when a
//! node comes back, so it moves only when it must), VRRPv3 adverts every 500 ms by default,
//! unicast to the other control-plane nodes, and a tracked check script without weight: a
//! failing check puts the instance in FAULT, which gives the VIP up at once. A graceful stop
//! sends priority 0, so a backup takes over without waiting for missed adverts.
//!
//! haproxy: TCP to every kube-apiserver, each checked with `GET /readyz` over TLS every second.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, Pod, PodSpec, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kubeadm_api::ha::{ControlPlaneNode, HighAvailabilityConfiguration};

use crate::staticpod::{HostMount, host_mount_at};

/// Where kubeadm keeps the endpoint's configuration files on the host.
pub const HA_DIR: &str = "/etc/kubernetes/ha";
/// keepalived's configuration.
pub const KEEPALIVED_CONF: &str = "/etc/kubernetes/ha/keepalived.conf";
/// keepalived's health check.
pub const CHECK_SCRIPT: &str = "/etc/kubernetes/ha/check_apiserver.sh";
/// haproxy's configuration.
pub const HAPROXY_CFG: &str = "/etc/kubernetes/ha/haproxy.cfg";

/// The node the files are for.
#[derive(Debug, Clone)]
pub struct HaNode<'a> {
    /// This node's name.
    pub name: &'a str,
    /// This node's address (its advertise address).
    pub address: &'a str,
    /// The interface the VIP floats on (resolved by the caller from the host).
    pub interface: &'a str,
    /// The VIP's prefix length on that interface.
    pub prefix: u8,
    /// The VRRP password (VRRPv2 only).
    pub auth_password: &'a str,
}

/// keepalived.conf for `node`, with every other control-plane node as a unicast peer.
pub fn keepalived_conf(
    cfg: &HighAvailabilityConfiguration,
    node: &HaNode<'_>,
    peers: &[ControlPlaneNode],
) -> String {
    let version = cfg
        .vrrp_version
        .unwrap_or(kubeadm_api::ha::DEFAULT_VRRP_VERSION);
    let ms = cfg
        .advert_interval_ms
        .unwrap_or(kubeadm_api::ha::DEFAULT_ADVERT_INTERVAL_MS);
    // keepalived takes seconds: "0.5", "1", "2.3".
    let advert = if ms.is_multiple_of(1000) {
        (ms / 1000).to_string()
    } else {
        format!("{}.{:02}", ms / 1000, (ms % 1000) / 10)
            .trim_end_matches('0')
            .to_string()
    };
    let mut out = String::new();
    out.push_str("# Written by kubeadm: the control-plane VIP. Rewritten when control-plane nodes join or leave.\n");
    out.push_str("global_defs {\n");
    out.push_str(&format!("    router_id {}\n", node.name));
    out.push_str(&format!("    vrrp_version {version}\n"));
    out.push_str("    script_user root\n    enable_script_security\n}\n");
    out.push_str("vrrp_script check_apiserver {\n");
    out.push_str(&format!("    script \"{CHECK_SCRIPT}\"\n"));
    out.push_str("    interval 1\n    timeout 2\n    fall 2\n    rise 2\n}\n");
    out.push_str("vrrp_instance kubeadm_control_plane {\n");
    out.push_str("    state BACKUP\n    nopreempt\n");
    out.push_str(&format!("    interface {}\n", node.interface));
    out.push_str(&format!(
        "    virtual_router_id {}\n",
        cfg.virtual_router_id
            .unwrap_or(kubeadm_api::ha::DEFAULT_VIRTUAL_ROUTER_ID)
    ));
    out.push_str("    priority 100\n");
    out.push_str(&format!("    advert_int {advert}\n"));
    if version == 2 && !node.auth_password.is_empty() {
        out.push_str(&format!(
            "    authentication {{\n        auth_type PASS\n        auth_pass {}\n    }}\n",
            node.auth_password
        ));
    }
    let others: Vec<&ControlPlaneNode> = peers
        .iter()
        .filter(|p| p.name != node.name && p.address != node.address)
        .collect();
    if cfg.unicast.unwrap_or(true) {
        out.push_str(&format!("    unicast_src_ip {}\n", node.address));
        out.push_str("    unicast_peer {\n");
        for p in &others {
            out.push_str(&format!("        {}\n", p.address));
        }
        out.push_str("    }\n");
    }
    out.push_str(&format!(
        "    virtual_ipaddress {{\n        {}/{} dev {}\n    }}\n",
        cfg.virtual_ip, node.prefix, node.interface
    ));
    out.push_str("    track_script {\n        check_apiserver\n    }\n}\n");
    out
}

/// The health check keepalived runs every second: this node's haproxy and its own API server
/// must both answer `/readyz`, else the node gives the VIP up.
pub fn check_script(
    cfg: &HighAvailabilityConfiguration,
    node_address: &str,
    api_port: u16,
) -> String {
    let host = bracket(node_address);
    format!(
        "#!/bin/sh\n# Written by kubeadm: keepalived's check of this control-plane node.\nset -e\ncurl -sfk --max-time 1 -o /dev/null https://127.0.0.1:{lb}/readyz\ncurl -sfk --max-time 1 -o /dev/null https://{host}:{api_port}/readyz\n",
        lb = cfg.lb_port()
    )
}

/// haproxy.cfg: TCP on the load balancer's port to every control-plane node's API server.
pub fn haproxy_cfg(cfg: &HighAvailabilityConfiguration, backends: &[ControlPlaneNode]) -> String {
    let bind = if cfg.has_vip() {
        // Every address, the VIP included once keepalived has put it here.
        format!(":::{} v4v6", cfg.lb_port())
    } else {
        format!("127.0.0.1:{}", cfg.lb_port())
    };
    let mut out = String::new();
    out.push_str("# Written by kubeadm: the control-plane load balancer. Rewritten when control-plane nodes join or leave.\n");
    out.push_str("global\n    log stdout format raw local0\n    maxconn 4096\n\n");
    out.push_str("defaults\n    mode tcp\n    log global\n    option tcplog\n    option dontlognull\n    retries 1\n    timeout connect 5s\n    timeout client 1h\n    timeout server 1h\n    timeout check 2s\n\n");
    out.push_str("frontend kube-apiserver\n");
    out.push_str(&format!("    bind {bind}\n"));
    out.push_str("    default_backend kube-apiserver\n\n");
    out.push_str("backend kube-apiserver\n    balance roundrobin\n    option httpchk GET /readyz\n    http-check expect status 200\n");
    out.push_str("    default-server check check-ssl verify none inter 1s fall 2 rise 2 on-marked-down shutdown-sessions\n");
    for b in backends {
        out.push_str(&format!(
            "    server {} {}:{}\n",
            b.name,
            bracket(&b.address),
            b.api_port()
        ));
    }
    out
}

fn bracket(address: &str) -> String {
    if address.contains(':') {
        format!("[{address}]")
    } else {
        address.to_string()
    }
}

/// The static Pod running keepalived with [`KEEPALIVED_CONF`] and [`CHECK_SCRIPT`].
pub fn keepalived_pod(cfg: &HighAvailabilityConfiguration) -> Pod {
    let mounts = [
        host_mount_at("config", KEEPALIVED_CONF, KEEPALIVED_CONF, "File", true),
        host_mount_at("check", CHECK_SCRIPT, CHECK_SCRIPT, "File", true),
    ];
    let container = Container {
        name: "keepalived".into(),
        image: Some(cfg.keepalived_image.clone()),
        command: Some(vec!["keepalived".into()]),
        args: Some(vec![
            "--dont-fork".into(),
            "--log-console".into(),
            "--vrrp".into(),
            format!("--use-file={KEEPALIVED_CONF}"),
        ]),
        security_context: Some(SecurityContext {
            capabilities: Some(Capabilities {
                add: Some(vec![
                    "NET_ADMIN".into(),
                    "NET_BROADCAST".into(),
                    "NET_RAW".into(),
                ]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    pod("keepalived", container, &mounts)
}

/// The static Pod running haproxy with [`HAPROXY_CFG`].
pub fn haproxy_pod(cfg: &HighAvailabilityConfiguration) -> Pod {
    let mounts = [host_mount_at(
        "config",
        HAPROXY_CFG,
        "/usr/local/etc/haproxy/haproxy.cfg",
        "File",
        true,
    )];
    let container = Container {
        name: "haproxy".into(),
        image: Some(cfg.haproxy_image.clone()),
        ..Default::default()
    };
    pod("haproxy", container, &mounts)
}

fn pod(name: &str, mut container: Container, mounts: &[HostMount]) -> Pod {
    container.image_pull_policy = Some("IfNotPresent".into());
    container.volume_mounts = Some(
        mounts
            .iter()
            .map(|m| m.mount.clone())
            .collect::<Vec<VolumeMount>>(),
    );
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some("kube-system".into()),
            labels: Some(BTreeMap::from([
                ("component".to_string(), name.to_string()),
                ("tier".to_string(), "control-plane".to_string()),
            ])),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![container],
            host_network: Some(true),
            priority_class_name: Some("system-node-critical".into()),
            volumes: Some(
                mounts
                    .iter()
                    .map(|m| m.volume.clone())
                    .collect::<Vec<Volume>>(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}
