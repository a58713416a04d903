//! `kubelet.config.k8s.io/v1beta1` KubeletConfiguration: every field upstream's Go type
//! declares (k8s.io/kubelet/config/v1beta1), with its type. Fields removed upstream in the
//! minors this binary supports are kept where a user of an older minor may still set them.

use serde::Deserialize;

use super::{Logging, Quantity, StringMap};
use crate::Duration;

/// The KubeletConfiguration document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubeletConfiguration {
    api_version: Option<String>,
    kind: Option<String>,
    enable_server: Option<bool>,
    static_pod_path: Option<String>,
    pod_logs_dir: Option<String>,
    sync_frequency: Option<Duration>,
    file_check_frequency: Option<Duration>,
    http_check_frequency: Option<Duration>,
    #[serde(rename = "staticPodURL")]
    static_pod_url: Option<String>,
    #[serde(rename = "staticPodURLHeader")]
    static_pod_url_header: Option<std::collections::BTreeMap<String, Vec<String>>>,
    address: Option<String>,
    port: Option<i32>,
    read_only_port: Option<i32>,
    tls_cert_file: Option<String>,
    tls_private_key_file: Option<String>,
    tls_cipher_suites: Option<Vec<String>>,
    tls_curve_preferences: Option<Vec<i32>>,
    tls_min_version: Option<String>,
    rotate_certificates: Option<bool>,
    #[serde(rename = "serverTLSBootstrap")]
    server_tls_bootstrap: Option<bool>,
    authentication: Option<Authentication>,
    authorization: Option<Authorization>,
    #[serde(rename = "registryPullQPS")]
    registry_pull_qps: Option<i32>,
    registry_burst: Option<i32>,
    image_pull_credentials_verification_policy: Option<String>,
    preloaded_images_verification_allowlist: Option<Vec<String>>,
    #[serde(rename = "eventRecordQPS")]
    event_record_qps: Option<i32>,
    event_burst: Option<i32>,
    enable_debugging_handlers: Option<bool>,
    enable_contention_profiling: Option<bool>,
    healthz_port: Option<i32>,
    healthz_bind_address: Option<String>,
    oom_score_adj: Option<i32>,
    cluster_domain: Option<String>,
    #[serde(rename = "clusterDNS")]
    cluster_dns: Option<Vec<String>>,
    streaming_connection_idle_timeout: Option<Duration>,
    node_status_update_frequency: Option<Duration>,
    node_status_report_frequency: Option<Duration>,
    node_lease_duration_seconds: Option<i32>,
    #[serde(rename = "imageMinimumGCAge")]
    image_minimum_gc_age: Option<Duration>,
    #[serde(rename = "imageMaximumGCAge")]
    image_maximum_gc_age: Option<Duration>,
    #[serde(rename = "imageGCHighThresholdPercent")]
    image_gc_high_threshold_percent: Option<i32>,
    #[serde(rename = "imageGCLowThresholdPercent")]
    image_gc_low_threshold_percent: Option<i32>,
    volume_stats_agg_period: Option<Duration>,
    kubelet_cgroups: Option<String>,
    system_cgroups: Option<String>,
    cgroup_root: Option<String>,
    #[serde(rename = "cgroupsPerQOS")]
    cgroups_per_qos: Option<bool>,
    cgroup_driver: Option<String>,
    cpu_manager_policy: Option<String>,
    #[serde(rename = "singleProcessOOMKill")]
    single_process_oom_kill: Option<bool>,
    cpu_manager_policy_options: Option<StringMap>,
    cpu_manager_reconcile_period: Option<Duration>,
    dra_manager_reconcile_period: Option<Duration>,
    memory_manager_policy: Option<String>,
    topology_manager_policy: Option<String>,
    topology_manager_scope: Option<String>,
    topology_manager_policy_options: Option<StringMap>,
    qos_reserved: Option<StringMap>,
    runtime_request_timeout: Option<Duration>,
    hairpin_mode: Option<String>,
    max_pods: Option<i32>,
    #[serde(rename = "podCIDR")]
    pod_cidr: Option<String>,
    pod_pids_limit: Option<i64>,
    resolv_conf: Option<String>,
    run_once: Option<bool>,
    #[serde(rename = "cpuCFSQuota")]
    cpu_cfs_quota: Option<bool>,
    #[serde(rename = "cpuCFSQuotaPeriod")]
    cpu_cfs_quota_period: Option<Duration>,
    node_status_max_images: Option<i32>,
    max_open_files: Option<i64>,
    content_type: Option<String>,
    #[serde(rename = "kubeAPIQPS")]
    kube_api_qps: Option<i32>,
    #[serde(rename = "kubeAPIBurst")]
    kube_api_burst: Option<i32>,
    serialize_image_pulls: Option<bool>,
    max_parallel_image_pulls: Option<i32>,
    eviction_hard: Option<StringMap>,
    eviction_soft: Option<StringMap>,
    eviction_soft_grace_period: Option<StringMap>,
    eviction_pressure_transition_period: Option<Duration>,
    eviction_max_pod_grace_period: Option<i32>,
    eviction_minimum_reclaim: Option<StringMap>,
    merge_default_eviction_settings: Option<bool>,
    pods_per_core: Option<i32>,
    enable_controller_attach_detach: Option<bool>,
    protect_kernel_defaults: Option<bool>,
    #[serde(rename = "makeIPTablesUtilChains")]
    make_ip_tables_util_chains: Option<bool>,
    iptables_masquerade_bit: Option<i32>,
    iptables_drop_bit: Option<i32>,
    feature_gates: Option<std::collections::BTreeMap<String, bool>>,
    fail_swap_on: Option<bool>,
    memory_swap: Option<MemorySwap>,
    container_log_max_size: Option<String>,
    container_log_max_files: Option<i32>,
    container_log_max_workers: Option<i32>,
    container_log_monitor_interval: Option<Duration>,
    config_map_and_secret_change_detection_strategy: Option<String>,
    system_reserved: Option<StringMap>,
    kube_reserved: Option<StringMap>,
    #[serde(rename = "reservedSystemCPUs")]
    reserved_system_cpus: Option<String>,
    show_hidden_metrics_for_version: Option<String>,
    system_reserved_cgroup: Option<String>,
    kube_reserved_cgroup: Option<String>,
    enforce_node_allocatable: Option<Vec<String>>,
    allowed_unsafe_sysctls: Option<Vec<String>>,
    volume_plugin_dir: Option<String>,
    #[serde(rename = "providerID")]
    provider_id: Option<String>,
    kernel_memcg_notification: Option<bool>,
    logging: Option<Logging>,
    enable_system_log_handler: Option<bool>,
    enable_system_log_query: Option<bool>,
    shutdown_grace_period: Option<Duration>,
    shutdown_grace_period_critical_pods: Option<Duration>,
    shutdown_grace_period_by_pod_priority: Option<Vec<ShutdownGracePeriodByPodPriority>>,
    crash_loop_back_off: Option<CrashLoopBackOff>,
    reserved_memory: Option<Vec<MemoryReservation>>,
    enable_profiling_handler: Option<bool>,
    enable_debug_flags_handler: Option<bool>,
    seccomp_default: Option<bool>,
    memory_throttling_factor: Option<f64>,
    memory_reservation_policy: Option<String>,
    register_with_taints: Option<Vec<Taint>>,
    register_node: Option<bool>,
    tracing: Option<Tracing>,
    local_storage_capacity_isolation: Option<bool>,
    container_runtime_endpoint: Option<String>,
    image_service_endpoint: Option<String>,
    fail_cgroup_v1: Option<bool>,
    user_namespaces: Option<UserNamespaces>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Authentication {
    x509: Option<X509Authentication>,
    webhook: Option<WebhookAuthentication>,
    anonymous: Option<AnonymousAuthentication>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct X509Authentication {
    #[serde(rename = "clientCAFile")]
    client_ca_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WebhookAuthentication {
    enabled: Option<bool>,
    #[serde(rename = "cacheTTL")]
    cache_ttl: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AnonymousAuthentication {
    enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Authorization {
    mode: Option<String>,
    webhook: Option<WebhookAuthorization>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WebhookAuthorization {
    #[serde(rename = "cacheAuthorizedTTL")]
    cache_authorized_ttl: Option<Duration>,
    #[serde(rename = "cacheUnauthorizedTTL")]
    cache_unauthorized_ttl: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MemorySwap {
    swap_behavior: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ShutdownGracePeriodByPodPriority {
    priority: Option<i32>,
    shutdown_grace_period_seconds: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CrashLoopBackOff {
    max_container_restart_period: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MemoryReservation {
    numa_node: Option<i32>,
    limits: Option<std::collections::BTreeMap<String, Quantity>>,
}

/// `core/v1` Taint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Taint {
    key: Option<String>,
    value: Option<String>,
    effect: Option<String>,
    time_added: Option<String>,
}

/// `TracingConfiguration` of k8s.io/component-base/tracing/api/v1.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Tracing {
    endpoint: Option<String>,
    sampling_rate_per_million: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UserNamespaces {
    ids_per_pod: Option<i64>,
}
