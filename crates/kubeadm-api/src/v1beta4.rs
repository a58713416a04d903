//! kubeadm.k8s.io/v1beta4 wire types, which double as the internal model.
//!
//! v1beta4 is a superset of v1beta3 (everything v1beta3 can say, v1beta4 can say too), so, like
//! upstream's internal API, one set of structs serves both as the newest wire format and as the
//! model every phase reads after defaulting. Field names, `omitempty` behaviour and pointer-ness
//! follow upstream's Go types so that what we print reads back identically in Go: a Go `string`
//! with `omitempty` is a Rust `String` skipped when empty, a Go pointer is an `Option`, and a Go
//! struct without a pointer is always printed (`apiServer: {}`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::token::BootstrapTokenString;

/// The API group and version of this module's types.
pub const API_VERSION: &str = "kubeadm.k8s.io/v1beta4";

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

pub(crate) fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

/// `kubeadm init`-only runtime information.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InitConfiguration {
    /// `kubeadm.k8s.io/v1beta4`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `InitConfiguration`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Bootstrap tokens to create at init time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bootstrap_tokens: Vec<BootstrapToken>,
    /// Dry-run mode: change nothing, print what would be done.
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
    /// How this node registers itself.
    #[serde(default)]
    pub node_registration: NodeRegistrationOptions,
    /// The endpoint of the API server instance on this node.
    #[serde(default, rename = "localAPIEndpoint")]
    pub local_api_endpoint: ApiEndpoint,
    /// Hex AES-256 key used to encrypt the certificates uploaded by `upload-certs`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub certificate_key: String,
    /// Phases to skip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_phases: Vec<String>,
    /// Patches applied to the components kubeadm deploys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patches: Option<Patches>,
    /// Timeouts of kubeadm operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
}

/// Cluster-wide configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterConfiguration {
    /// `kubeadm.k8s.io/v1beta4`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `ClusterConfiguration`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// etcd settings (local or external).
    #[serde(default)]
    pub etcd: Etcd,
    /// Service and Pod networks, DNS domain.
    #[serde(default)]
    pub networking: Networking,
    /// Target control-plane version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kubernetes_version: String,
    /// Stable address (and optional port) of the control plane.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub control_plane_endpoint: String,
    /// kube-apiserver settings.
    #[serde(default, rename = "apiServer")]
    pub api_server: ApiServer,
    /// kube-controller-manager settings.
    #[serde(default)]
    pub controller_manager: ControlPlaneComponent,
    /// kube-scheduler settings.
    #[serde(default)]
    pub scheduler: ControlPlaneComponent,
    /// CoreDNS add-on settings.
    #[serde(default)]
    pub dns: Dns,
    /// kube-proxy add-on settings.
    #[serde(default)]
    pub proxy: Proxy,
    /// Where certificates are stored.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub certificates_dir: String,
    /// Registry the images are pulled from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_repository: String,
    /// kubeadm feature gates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub feature_gates: BTreeMap<String, bool>,
    /// Name of the cluster (kubeconfig cluster entry).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_name: String,
    /// Key algorithm of every generated key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub encryption_algorithm: String,
    /// Validity of leaf certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_validity_period: Option<Duration>,
    /// Validity of CA certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate_validity_period: Option<Duration>,
}

/// A flag for a component: `--name=value`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arg {
    /// Flag name without leading dashes.
    pub name: String,
    /// Flag value.
    pub value: String,
}

/// An environment variable of a container (core/v1 EnvVar).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    /// Variable name.
    pub name: String,
    /// Literal value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// A reference (fieldRef, secretKeyRef, …), carried through as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<serde_json::Value>,
}

/// Settings shared by the control-plane components.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControlPlaneComponent {
    /// Extra flags; they override defaults by name, duplicates are allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<Arg>,
    /// Extra host volumes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_volumes: Vec<HostPathMount>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_envs: Vec<EnvVar>,
}

/// kube-apiserver settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiServer {
    /// Extra flags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<Arg>,
    /// Extra host volumes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_volumes: Vec<HostPathMount>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_envs: Vec<EnvVar>,
    /// Extra SANs of the serving certificate.
    #[serde(default, rename = "certSANs", skip_serializing_if = "Vec::is_empty")]
    pub cert_sans: Vec<String>,
}

impl ApiServer {
    /// The settings this component shares with the other control-plane components.
    pub fn component(&self) -> ControlPlaneComponent {
        ControlPlaneComponent {
            extra_args: self.extra_args.clone(),
            extra_volumes: self.extra_volumes.clone(),
            extra_envs: self.extra_envs.clone(),
        }
    }
}

/// CoreDNS add-on settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dns {
    /// Registry override for the CoreDNS image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_repository: String,
    /// Tag override for the CoreDNS image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_tag: String,
    /// Do not install CoreDNS.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
}

/// kube-proxy add-on settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Proxy {
    /// Do not install kube-proxy.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
}

/// Address and port of one API server instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiEndpoint {
    /// The IP address the API server advertises.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub advertise_address: String,
    /// The secure port (default 6443).
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub bind_port: i32,
}

/// A node taint (core/v1 Taint).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Taint {
    /// Taint key.
    pub key: String,
    /// Taint value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    /// NoSchedule, PreferNoSchedule or NoExecute.
    pub effect: String,
    /// When the taint was added (only for NoExecute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_added: Option<String>,
}

/// How a node registers with the cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeRegistrationOptions {
    /// Node name (defaults to the lowercased hostname).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// CRI endpoint, e.g. `unix:///var/run/containerd/containerd.sock`.
    #[serde(
        default,
        rename = "criSocket",
        skip_serializing_if = "String::is_empty"
    )]
    pub cri_socket: String,
    /// Taints to register with; `None` means "the default for the node's role", `[]` none.
    #[serde(default)]
    pub taints: Option<Vec<Taint>>,
    /// Extra kubelet flags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubelet_extra_args: Vec<Arg>,
    /// Preflight checks whose errors become warnings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_preflight_errors: Vec<String>,
    /// Always, IfNotPresent or Never.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_pull_policy: String,
    /// Pull images one at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_serial: Option<bool>,
}

/// The cluster's networks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Networking {
    /// Service CIDR(s), comma separated for dual-stack.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_subnet: String,
    /// Pod CIDR(s), comma separated for dual-stack.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod_subnet: String,
    /// DNS domain of Services.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dns_domain: String,
}

/// etcd: local (static Pod) or external.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Etcd {
    /// Run etcd as a static Pod on control-plane nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalEtcd>,
    /// Use an existing etcd cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalEtcd>,
}

/// A local (stacked) etcd member.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalEtcd {
    /// Registry override for the etcd image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_repository: String,
    /// Tag override for the etcd image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_tag: String,
    /// Data directory (default /var/lib/etcd).
    #[serde(default)]
    pub data_dir: String,
    /// Extra etcd flags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<Arg>,
    /// Extra environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_envs: Vec<EnvVar>,
    /// Extra SANs of etcd's serving certificate.
    #[serde(
        default,
        rename = "serverCertSANs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub server_cert_sans: Vec<String>,
    /// Extra SANs of etcd's peer certificate.
    #[serde(
        default,
        rename = "peerCertSANs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub peer_cert_sans: Vec<String>,
}

/// An external etcd cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalEtcd {
    /// Client URLs of the members.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// CA bundle to verify the members.
    #[serde(default, rename = "caFile")]
    pub ca_file: String,
    /// Client certificate.
    #[serde(default)]
    pub cert_file: String,
    /// Client key.
    #[serde(default)]
    pub key_file: String,
}

/// `kubeadm join` runtime information.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinConfiguration {
    /// `kubeadm.k8s.io/v1beta4`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `JoinConfiguration`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Dry-run mode.
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
    /// How this node registers itself.
    #[serde(default)]
    pub node_registration: NodeRegistrationOptions,
    /// Where the cluster CA is written.
    #[serde(
        default,
        rename = "caCertPath",
        skip_serializing_if = "String::is_empty"
    )]
    pub ca_cert_path: String,
    /// How the cluster is found and authenticated.
    #[serde(default)]
    pub discovery: Discovery,
    /// Present when this node joins as a control-plane node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<JoinControlPlane>,
    /// Phases to skip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_phases: Vec<String>,
    /// Patches for the components deployed on this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patches: Option<Patches>,
    /// Timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
}

/// The control-plane instance a joining node runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinControlPlane {
    /// The local API server endpoint.
    #[serde(default, rename = "localAPIEndpoint")]
    pub local_api_endpoint: ApiEndpoint,
    /// Key that decrypts the kubeadm-certs Secret.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub certificate_key: String,
}

/// Cluster discovery for join.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Discovery {
    /// Token discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_token: Option<BootstrapTokenDiscovery>,
    /// File or URL discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileDiscovery>,
    /// Token used for the kubelet's TLS bootstrap.
    #[serde(
        default,
        rename = "tlsBootstrapToken",
        skip_serializing_if = "String::is_empty"
    )]
    pub tls_bootstrap_token: String,
}

/// Token-based discovery.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BootstrapTokenDiscovery {
    /// The bootstrap token.
    #[serde(default)]
    pub token: String,
    /// `host:port` of an API server.
    #[serde(
        default,
        rename = "apiServerEndpoint",
        skip_serializing_if = "String::is_empty"
    )]
    pub api_server_endpoint: String,
    /// `sha256:<hex>` pins of the cluster CA's public key.
    #[serde(
        default,
        rename = "caCertHashes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ca_cert_hashes: Vec<String>,
    /// Join without pinning the CA.
    #[serde(
        default,
        rename = "unsafeSkipCAVerification",
        skip_serializing_if = "is_false"
    )]
    pub unsafe_skip_ca_verification: bool,
}

/// File or HTTPS URL discovery.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileDiscovery {
    /// Path or https URL of a kubeconfig with the cluster.
    #[serde(default)]
    pub kube_config_path: String,
}

/// A host directory mounted into a control-plane Pod.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostPathMount {
    /// Volume name.
    pub name: String,
    /// Path on the host.
    pub host_path: String,
    /// Path in the container.
    pub mount_path: String,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// core/v1 HostPathType.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path_type: String,
}

/// Where patches live.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Patches {
    /// Directory with `target[suffix][+patchtype].extension` files.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub directory: String,
}

/// Timeouts of kubeadm operations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timeouts {
    /// Waiting for control-plane components to be healthy (4m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_component_health_check: Option<Duration>,
    /// Waiting for the kubelet to be healthy (4m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_health_check: Option<Duration>,
    /// One API request (1m).
    #[serde(
        default,
        rename = "kubernetesAPICall",
        skip_serializing_if = "Option::is_none"
    )]
    pub kubernetes_api_call: Option<Duration>,
    /// One etcd request (2m).
    #[serde(
        default,
        rename = "etcdAPICall",
        skip_serializing_if = "Option::is_none"
    )]
    pub etcd_api_call: Option<Duration>,
    /// The kubelet's TLS bootstrap (5m).
    #[serde(
        default,
        rename = "tlsBootstrap",
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_bootstrap: Option<Duration>,
    /// Discovery of the cluster (5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<Duration>,
    /// Upgrading static Pod manifests (5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_manifests: Option<Duration>,
}

/// A bootstrap token to create.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BootstrapToken {
    /// `[a-z0-9]{6}.[a-z0-9]{16}`.
    pub token: BootstrapTokenString,
    /// Human description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Time to live (24h by default); ignored when `expires` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
    /// Absolute expiry (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// `signing`, `authentication`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usages: Vec<String>,
    /// Extra groups the token authenticates as.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// `kubeadm reset` runtime information (v1beta4 only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetConfiguration {
    /// `kubeadm.k8s.io/v1beta4`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `ResetConfiguration`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Also clean /etc/kubernetes/tmp.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cleanup_tmp_dir: bool,
    /// Certificate directory to clean.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub certificates_dir: String,
    /// CRI endpoint.
    #[serde(
        default,
        rename = "criSocket",
        skip_serializing_if = "String::is_empty"
    )]
    pub cri_socket: String,
    /// Dry-run mode.
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[serde(default, skip_serializing_if = "is_false")]
    pub force: bool,
    /// Preflight errors to ignore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_preflight_errors: Vec<String>,
    /// Phases to skip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_phases: Vec<String>,
    /// unmount2() flags: MNT_FORCE, MNT_DETACH, MNT_EXPIRE, UMOUNT_NOFOLLOW.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmount_flags: Vec<String>,
    /// Timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
}

/// `kubeadm upgrade` runtime information (v1beta4 only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradeConfiguration {
    /// `kubeadm.k8s.io/v1beta4`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `UpgradeConfiguration`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// `upgrade apply` options.
    #[serde(default)]
    pub apply: UpgradeApplyConfiguration,
    /// `upgrade diff` options.
    #[serde(default)]
    pub diff: UpgradeDiffConfiguration,
    /// `upgrade node` options.
    #[serde(default)]
    pub node: UpgradeNodeConfiguration,
    /// `upgrade plan` options.
    #[serde(default)]
    pub plan: UpgradePlanConfiguration,
    /// Timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
}

/// `upgrade apply` options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradeApplyConfiguration {
    /// Target version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kubernetes_version: String,
    /// Allow alpha/beta/rc targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_experimental_upgrades: Option<bool>,
    /// Allow rc targets.
    #[serde(
        default,
        rename = "allowRCUpgrades",
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_rc_upgrades: Option<bool>,
    /// Renew certificates during the upgrade (true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_renewal: Option<bool>,
    /// Dry-run mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// Upgrade etcd too (true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_upgrade: Option<bool>,
    /// Do not ask for confirmation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_upgrade: Option<bool>,
    /// Preflight errors to ignore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_preflight_errors: Vec<String>,
    /// Patches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patches: Option<Patches>,
    /// Print the configuration used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub print_config: Option<bool>,
    /// Phases to skip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_phases: Vec<String>,
    /// Always, IfNotPresent or Never.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_pull_policy: String,
    /// Pull images one at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_serial: Option<bool>,
}

/// `upgrade diff` options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradeDiffConfiguration {
    /// Target version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kubernetes_version: String,
    /// Lines of context in the diff.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub context_lines: i32,
}

/// `upgrade node` options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradeNodeConfiguration {
    /// Renew certificates (true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_renewal: Option<bool>,
    /// Dry-run mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// Upgrade etcd too (true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_upgrade: Option<bool>,
    /// Preflight errors to ignore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_preflight_errors: Vec<String>,
    /// Phases to skip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_phases: Vec<String>,
    /// Patches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patches: Option<Patches>,
    /// Always, IfNotPresent or Never.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_pull_policy: String,
    /// Pull images one at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_serial: Option<bool>,
}

/// `upgrade plan` options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpgradePlanConfiguration {
    /// Target version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kubernetes_version: String,
    /// Show alpha/beta/rc targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_experimental_upgrades: Option<bool>,
    /// Show rc targets.
    #[serde(
        default,
        rename = "allowRCUpgrades",
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_rc_upgrades: Option<bool>,
    /// Dry-run mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// Preflight errors to ignore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_preflight_errors: Vec<String>,
    /// Print the configuration used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub print_config: Option<bool>,
}
