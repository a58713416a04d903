//! `kubeproxy.config.k8s.io/v1alpha1` KubeProxyConfiguration: every field upstream's Go type
//! declares (k8s.io/kube-proxy/config/v1alpha1), with its type.

use serde::Deserialize;

use super::Logging;
use crate::Duration;

/// The KubeProxyConfiguration document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubeProxyConfiguration {
    api_version: Option<String>,
    kind: Option<String>,
    feature_gates: Option<std::collections::BTreeMap<String, bool>>,
    client_connection: Option<ClientConnection>,
    logging: Option<Logging>,
    hostname_override: Option<String>,
    bind_address: Option<String>,
    healthz_bind_address: Option<String>,
    metrics_bind_address: Option<String>,
    bind_address_hard_fail: Option<bool>,
    enable_profiling: Option<bool>,
    show_hidden_metrics_for_version: Option<String>,
    mode: Option<String>,
    iptables: Option<IpTables>,
    ipvs: Option<Ipvs>,
    nftables: Option<NfTables>,
    winkernel: Option<Winkernel>,
    detect_local_mode: Option<String>,
    detect_local: Option<DetectLocal>,
    #[serde(rename = "clusterCIDR")]
    cluster_cidr: Option<String>,
    node_port_addresses: Option<Vec<String>>,
    oom_score_adj: Option<i32>,
    conntrack: Option<Conntrack>,
    config_sync_period: Option<Duration>,
    port_range: Option<String>,
    windows_run_as_service: Option<bool>,
    /// Removed upstream in 1.26 (the userspace proxy); still accepted from older files.
    udp_idle_timeout: Option<Duration>,
}

/// `ClientConnectionConfiguration` of k8s.io/component-base/config/v1alpha1.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ClientConnection {
    kubeconfig: Option<String>,
    accept_content_types: Option<String>,
    content_type: Option<String>,
    qps: Option<f32>,
    burst: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct IpTables {
    masquerade_bit: Option<i32>,
    masquerade_all: Option<bool>,
    localhost_node_ports: Option<bool>,
    #[serde(rename = "snatNodeInternalIP")]
    snat_node_internal_ip: Option<bool>,
    sync_period: Option<Duration>,
    min_sync_period: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Ipvs {
    sync_period: Option<Duration>,
    min_sync_period: Option<Duration>,
    scheduler: Option<String>,
    #[serde(rename = "excludeCIDRs")]
    exclude_cidrs: Option<Vec<String>>,
    #[serde(rename = "strictARP")]
    strict_arp: Option<bool>,
    tcp_timeout: Option<Duration>,
    tcp_fin_timeout: Option<Duration>,
    udp_timeout: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NfTables {
    masquerade_bit: Option<i32>,
    masquerade_all: Option<bool>,
    sync_period: Option<Duration>,
    min_sync_period: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Winkernel {
    network_name: Option<String>,
    source_vip: Option<String>,
    #[serde(rename = "enableDSR")]
    enable_dsr: Option<bool>,
    root_hns_endpoint_name: Option<String>,
    forward_health_check_vip: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DetectLocal {
    bridge_interface: Option<String>,
    interface_name_prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Conntrack {
    max_per_core: Option<i32>,
    min: Option<i32>,
    tcp_established_timeout: Option<Duration>,
    tcp_close_wait_timeout: Option<Duration>,
    tcp_be_liberal: Option<bool>,
    udp_timeout: Option<Duration>,
    udp_stream_timeout: Option<Duration>,
}
