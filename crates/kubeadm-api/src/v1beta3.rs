//! kubeadm.k8s.io/v1beta3 wire types and their conversion to and from v1beta4.
//!
//! Only the types that differ from v1beta4 are declared here; the rest (endpoints, networking,
//! external etcd, tokens, discovery, patches) are identical on the wire and reused.
//! Differences: `extraArgs` and `kubeletExtraArgs` are maps; no `extraEnvs`, `dryRun`,
//! `timeouts`, `proxy`, `dns.disabled`, `encryptionAlgorithm` or validity periods;
//! `apiServer.timeoutForControlPlane` and `discovery.timeout` hold what v1beta4 keeps in
//! `timeouts`. There is no ResetConfiguration or UpgradeConfiguration in v1beta3.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::v1beta4 as b4;
use crate::v1beta4::{
    ApiEndpoint, BootstrapToken, BootstrapTokenDiscovery, ExternalEtcd, FileDiscovery,
    HostPathMount, JoinControlPlane, Networking, Patches, Taint,
};

/// The API group and version of this module's types.
pub const API_VERSION: &str = "kubeadm.k8s.io/v1beta3";

/// v1beta3 InitConfiguration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InitConfiguration {
    /// `kubeadm.k8s.io/v1beta3`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `InitConfiguration`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Bootstrap tokens to create.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bootstrap_tokens: Vec<BootstrapToken>,
    /// How this node registers itself.
    #[serde(default)]
    pub node_registration: NodeRegistrationOptions,
    /// The local API server endpoint.
    #[serde(default, rename = "localAPIEndpoint")]
    pub local_api_endpoint: ApiEndpoint,
    /// Certificate key for upload-certs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub certificate_key: String,
    /// Phases to skip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_phases: Vec<String>,
    /// Patches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patches: Option<Patches>,
}

/// v1beta3 ClusterConfiguration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterConfiguration {
    /// `kubeadm.k8s.io/v1beta3`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `ClusterConfiguration`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// etcd settings.
    #[serde(default)]
    pub etcd: Etcd,
    /// Networks.
    #[serde(default)]
    pub networking: Networking,
    /// Target version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kubernetes_version: String,
    /// Stable control-plane address.
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
    /// CoreDNS settings.
    #[serde(default)]
    pub dns: Dns,
    /// Certificate directory.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub certificates_dir: String,
    /// Image registry.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_repository: String,
    /// Feature gates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub feature_gates: BTreeMap<String, bool>,
    /// Cluster name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_name: String,
}

/// v1beta3 control-plane component settings (`extraArgs` is a map).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControlPlaneComponent {
    /// Extra flags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_args: BTreeMap<String, String>,
    /// Extra host volumes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_volumes: Vec<HostPathMount>,
}

/// v1beta3 kube-apiserver settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiServer {
    /// Extra flags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_args: BTreeMap<String, String>,
    /// Extra host volumes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_volumes: Vec<HostPathMount>,
    /// Extra SANs.
    #[serde(default, rename = "certSANs", skip_serializing_if = "Vec::is_empty")]
    pub cert_sans: Vec<String>,
    /// How long to wait for the API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_for_control_plane: Option<Duration>,
}

/// v1beta3 CoreDNS settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dns {
    /// Registry override.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_repository: String,
    /// Tag override.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_tag: String,
}

/// v1beta3 etcd settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Etcd {
    /// Local etcd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalEtcd>,
    /// External etcd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalEtcd>,
}

/// v1beta3 local etcd.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalEtcd {
    /// Registry override.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_repository: String,
    /// Tag override.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_tag: String,
    /// Data directory.
    #[serde(default)]
    pub data_dir: String,
    /// Extra flags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_args: BTreeMap<String, String>,
    /// Extra serving-cert SANs.
    #[serde(
        default,
        rename = "serverCertSANs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub server_cert_sans: Vec<String>,
    /// Extra peer-cert SANs.
    #[serde(
        default,
        rename = "peerCertSANs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub peer_cert_sans: Vec<String>,
}

/// v1beta3 node registration (`kubeletExtraArgs` is a map).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeRegistrationOptions {
    /// Node name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// CRI endpoint.
    #[serde(
        default,
        rename = "criSocket",
        skip_serializing_if = "String::is_empty"
    )]
    pub cri_socket: String,
    /// Taints.
    #[serde(default)]
    pub taints: Option<Vec<Taint>>,
    /// Extra kubelet flags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kubelet_extra_args: BTreeMap<String, String>,
    /// Preflight errors to ignore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_preflight_errors: Vec<String>,
    /// Image pull policy.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_pull_policy: String,
}

/// v1beta3 JoinConfiguration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinConfiguration {
    /// `kubeadm.k8s.io/v1beta3`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// `JoinConfiguration`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Node registration.
    #[serde(default)]
    pub node_registration: NodeRegistrationOptions,
    /// Where the cluster CA is written.
    #[serde(
        default,
        rename = "caCertPath",
        skip_serializing_if = "String::is_empty"
    )]
    pub ca_cert_path: String,
    /// Discovery.
    #[serde(default)]
    pub discovery: Discovery,
    /// Control-plane join settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<JoinControlPlane>,
    /// Phases to skip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_phases: Vec<String>,
    /// Patches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patches: Option<Patches>,
}

/// v1beta3 discovery (with `timeout`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Discovery {
    /// Token discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_token: Option<BootstrapTokenDiscovery>,
    /// File discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileDiscovery>,
    /// TLS bootstrap token.
    #[serde(
        default,
        rename = "tlsBootstrapToken",
        skip_serializing_if = "String::is_empty"
    )]
    pub tls_bootstrap_token: String,
    /// Discovery timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// Turns a v1beta3 `map[string]string` of flags into v1beta4's list, sorted by name as upstream's
/// conversion does.
pub fn args_to_list(map: &BTreeMap<String, String>) -> Vec<b4::Arg> {
    map.iter()
        .map(|(name, value)| b4::Arg {
            name: name.clone(),
            value: value.clone(),
        })
        .collect()
}

/// Turns v1beta4's list of flags into v1beta3's map; with duplicates the last value wins, which
/// is also what the component would see.
pub fn args_to_map(list: &[b4::Arg]) -> BTreeMap<String, String> {
    list.iter()
        .map(|a| (a.name.clone(), a.value.clone()))
        .collect()
}

fn component_up(c: &ControlPlaneComponent) -> b4::ControlPlaneComponent {
    b4::ControlPlaneComponent {
        extra_args: args_to_list(&c.extra_args),
        extra_volumes: c.extra_volumes.clone(),
        extra_envs: Vec::new(),
    }
}

fn component_down(c: &b4::ControlPlaneComponent) -> ControlPlaneComponent {
    ControlPlaneComponent {
        extra_args: args_to_map(&c.extra_args),
        extra_volumes: c.extra_volumes.clone(),
    }
}

fn node_registration_up(n: &NodeRegistrationOptions) -> b4::NodeRegistrationOptions {
    b4::NodeRegistrationOptions {
        name: n.name.clone(),
        cri_socket: n.cri_socket.clone(),
        taints: n.taints.clone(),
        kubelet_extra_args: args_to_list(&n.kubelet_extra_args),
        ignore_preflight_errors: n.ignore_preflight_errors.clone(),
        image_pull_policy: n.image_pull_policy.clone(),
        image_pull_serial: None,
    }
}

fn node_registration_down(n: &b4::NodeRegistrationOptions) -> NodeRegistrationOptions {
    NodeRegistrationOptions {
        name: n.name.clone(),
        cri_socket: n.cri_socket.clone(),
        taints: n.taints.clone(),
        kubelet_extra_args: args_to_map(&n.kubelet_extra_args),
        ignore_preflight_errors: n.ignore_preflight_errors.clone(),
        image_pull_policy: n.image_pull_policy.clone(),
    }
}

impl ClusterConfiguration {
    /// Converts to v1beta4. `timeoutForControlPlane` has no place in v1beta4's
    /// ClusterConfiguration: it is returned so the caller can move it into the
    /// InitConfiguration's `timeouts.controlPlaneComponentHealthCheck`, as upstream does.
    pub fn to_v1beta4(&self) -> (b4::ClusterConfiguration, Option<Duration>) {
        let etcd = b4::Etcd {
            local: self.etcd.local.as_ref().map(|l| b4::LocalEtcd {
                image_repository: l.image_repository.clone(),
                image_tag: l.image_tag.clone(),
                data_dir: l.data_dir.clone(),
                extra_args: args_to_list(&l.extra_args),
                extra_envs: Vec::new(),
                server_cert_sans: l.server_cert_sans.clone(),
                peer_cert_sans: l.peer_cert_sans.clone(),
            }),
            external: self.etcd.external.clone(),
        };
        let out = b4::ClusterConfiguration {
            api_version: b4::API_VERSION.into(),
            kind: "ClusterConfiguration".into(),
            etcd,
            networking: self.networking.clone(),
            kubernetes_version: self.kubernetes_version.clone(),
            control_plane_endpoint: self.control_plane_endpoint.clone(),
            api_server: b4::ApiServer {
                extra_args: args_to_list(&self.api_server.extra_args),
                extra_volumes: self.api_server.extra_volumes.clone(),
                extra_envs: Vec::new(),
                cert_sans: self.api_server.cert_sans.clone(),
            },
            controller_manager: component_up(&self.controller_manager),
            scheduler: component_up(&self.scheduler),
            dns: b4::Dns {
                image_repository: self.dns.image_repository.clone(),
                image_tag: self.dns.image_tag.clone(),
                disabled: false,
            },
            proxy: b4::Proxy::default(),
            certificates_dir: self.certificates_dir.clone(),
            image_repository: self.image_repository.clone(),
            feature_gates: self.feature_gates.clone(),
            cluster_name: self.cluster_name.clone(),
            encryption_algorithm: String::new(),
            certificate_validity_period: None,
            ca_certificate_validity_period: None,
        };
        (out, self.api_server.timeout_for_control_plane)
    }

    /// Converts from v1beta4, dropping what v1beta3 cannot express (for uploading the
    /// configuration to clusters below 1.31, whose kubeadm reads only v1beta3).
    pub fn from_v1beta4(c: &b4::ClusterConfiguration, timeout: Option<Duration>) -> Self {
        ClusterConfiguration {
            api_version: API_VERSION.into(),
            kind: "ClusterConfiguration".into(),
            etcd: Etcd {
                local: c.etcd.local.as_ref().map(|l| LocalEtcd {
                    image_repository: l.image_repository.clone(),
                    image_tag: l.image_tag.clone(),
                    data_dir: l.data_dir.clone(),
                    extra_args: args_to_map(&l.extra_args),
                    server_cert_sans: l.server_cert_sans.clone(),
                    peer_cert_sans: l.peer_cert_sans.clone(),
                }),
                external: c.etcd.external.clone(),
            },
            networking: c.networking.clone(),
            kubernetes_version: c.kubernetes_version.clone(),
            control_plane_endpoint: c.control_plane_endpoint.clone(),
            api_server: ApiServer {
                extra_args: args_to_map(&c.api_server.extra_args),
                extra_volumes: c.api_server.extra_volumes.clone(),
                cert_sans: c.api_server.cert_sans.clone(),
                timeout_for_control_plane: timeout,
            },
            controller_manager: component_down(&c.controller_manager),
            scheduler: component_down(&c.scheduler),
            dns: Dns {
                image_repository: c.dns.image_repository.clone(),
                image_tag: c.dns.image_tag.clone(),
            },
            certificates_dir: c.certificates_dir.clone(),
            image_repository: c.image_repository.clone(),
            feature_gates: c.feature_gates.clone(),
            cluster_name: c.cluster_name.clone(),
        }
    }
}

impl InitConfiguration {
    /// Converts to v1beta4; `control_plane_timeout` is the ClusterConfiguration's
    /// `apiServer.timeoutForControlPlane`, if any.
    pub fn to_v1beta4(&self, control_plane_timeout: Option<Duration>) -> b4::InitConfiguration {
        b4::InitConfiguration {
            api_version: b4::API_VERSION.into(),
            kind: "InitConfiguration".into(),
            bootstrap_tokens: self.bootstrap_tokens.clone(),
            dry_run: false,
            node_registration: node_registration_up(&self.node_registration),
            local_api_endpoint: self.local_api_endpoint.clone(),
            certificate_key: self.certificate_key.clone(),
            skip_phases: self.skip_phases.clone(),
            patches: self.patches.clone(),
            timeouts: control_plane_timeout.map(|t| b4::Timeouts {
                control_plane_component_health_check: Some(t),
                ..Default::default()
            }),
        }
    }

    /// Converts from v1beta4, dropping what v1beta3 cannot express.
    pub fn from_v1beta4(c: &b4::InitConfiguration) -> Self {
        InitConfiguration {
            api_version: API_VERSION.into(),
            kind: "InitConfiguration".into(),
            bootstrap_tokens: c.bootstrap_tokens.clone(),
            node_registration: node_registration_down(&c.node_registration),
            local_api_endpoint: c.local_api_endpoint.clone(),
            certificate_key: c.certificate_key.clone(),
            skip_phases: c.skip_phases.clone(),
            patches: c.patches.clone(),
        }
    }
}

impl JoinConfiguration {
    /// Converts to v1beta4; `discovery.timeout` moves to `timeouts.discovery`.
    pub fn to_v1beta4(&self) -> b4::JoinConfiguration {
        b4::JoinConfiguration {
            api_version: b4::API_VERSION.into(),
            kind: "JoinConfiguration".into(),
            dry_run: false,
            node_registration: node_registration_up(&self.node_registration),
            ca_cert_path: self.ca_cert_path.clone(),
            discovery: b4::Discovery {
                bootstrap_token: self.discovery.bootstrap_token.clone(),
                file: self.discovery.file.clone(),
                tls_bootstrap_token: self.discovery.tls_bootstrap_token.clone(),
            },
            control_plane: self.control_plane.clone(),
            skip_phases: self.skip_phases.clone(),
            patches: self.patches.clone(),
            timeouts: self.discovery.timeout.map(|t| b4::Timeouts {
                discovery: Some(t),
                ..Default::default()
            }),
        }
    }

    /// Converts from v1beta4, dropping what v1beta3 cannot express.
    pub fn from_v1beta4(c: &b4::JoinConfiguration) -> Self {
        JoinConfiguration {
            api_version: API_VERSION.into(),
            kind: "JoinConfiguration".into(),
            node_registration: node_registration_down(&c.node_registration),
            ca_cert_path: c.ca_cert_path.clone(),
            discovery: Discovery {
                bootstrap_token: c.discovery.bootstrap_token.clone(),
                file: c.discovery.file.clone(),
                tls_bootstrap_token: c.discovery.tls_bootstrap_token.clone(),
                timeout: c.timeouts.as_ref().and_then(|t| t.discovery),
            },
            control_plane: c.control_plane.clone(),
            skip_phases: c.skip_phases.clone(),
            patches: c.patches.clone(),
        }
    }
}
