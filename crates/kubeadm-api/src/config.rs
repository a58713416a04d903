//! The resolved configurations commands work with: defaulted, host-completed and validated.
//!
//! Pipeline (as upstream): decode the file (or start empty) → apply command-line flags →
//! static defaults → dynamic defaults from [`HostFacts`] → resolve the version → validate.
//! Phases only ever see the result.

use std::net::IpAddr;

use serde_json::Value;

use crate::defaults::{self, HostFacts};
use crate::v1beta4::*;
use crate::version::{self, KubeVersion, MinorInfo};
use crate::{ConfigError, component, decode::Documents, net, validate};

/// Everything `kubeadm init` (and its phases) needs.
#[derive(Debug, Clone)]
pub struct InitConfig {
    /// The InitConfiguration, defaulted.
    pub init: InitConfiguration,
    /// The ClusterConfiguration, defaulted.
    pub cluster: ClusterConfiguration,
    /// The KubeletConfiguration document to write (user's, completed by kubeadm's defaults).
    pub kubelet: Value,
    /// The KubeProxyConfiguration document (user's, completed).
    pub kube_proxy: Value,
    /// The user's own KubeletConfiguration document, before completion (for upload).
    pub kubelet_user: Option<Value>,
    /// The resolved Kubernetes version.
    pub version: KubeVersion,
    /// Our HighAvailabilityConfiguration document (defaulted and validated by the caller), when
    /// the built-in control-plane endpoint is wanted.
    pub ha: Option<crate::ha::HighAvailabilityConfiguration>,
    /// Our ControlPlaneConfiguration document (defaulted, validated by the caller): static Pods
    /// or systemd services.
    pub control_plane: crate::mode::ControlPlaneConfiguration,
}

impl InitConfig {
    /// Starts from a decoded file (or `Documents::default()` when no `--config` was given).
    /// Flags are applied by the caller on `init`/`cluster` before [`InitConfig::complete`].
    pub fn start(
        docs: Documents,
    ) -> (
        InitConfiguration,
        ClusterConfiguration,
        Option<Value>,
        Option<Value>,
    ) {
        (
            docs.init.unwrap_or_default(),
            docs.cluster.unwrap_or_default(),
            docs.kubelet,
            docs.kube_proxy,
        )
    }

    /// Defaults, completes and validates. `cri_given` says whether the CRI socket was chosen by
    /// the operator (flag or file); `file` names the source for error messages.
    pub fn complete(
        mut init: InitConfiguration,
        mut cluster: ClusterConfiguration,
        kubelet_user: Option<Value>,
        kube_proxy_user: Option<Value>,
        facts: &HostFacts,
        cri_given: bool,
        file: &str,
    ) -> Result<Self, ConfigError> {
        defaults::cluster(&mut cluster);
        defaults::init(&mut init, false);
        defaults::dynamic_init(&mut init, cri_given, facts)?;
        let mut errors = validate::cluster(&cluster);
        errors.0.extend(validate::init(&init).0);
        if !errors.is_empty() {
            return Err(ConfigError::Invalid {
                file: file.to_string(),
                errors,
            });
        }
        // Validation resolved the version once already; it cannot fail here.
        let version =
            version::resolve(&cluster.kubernetes_version).map_err(|e| ConfigError::Invalid {
                file: file.to_string(),
                errors: validate::FieldErrors(vec![validate::FieldError {
                    path: "ClusterConfiguration.kubernetesVersion".into(),
                    value: cluster.kubernetes_version.clone(),
                    detail: e,
                }]),
            })?;
        cluster.kubernetes_version = version.to_string();
        let ipv6 = init
            .local_api_endpoint
            .advertise_address
            .parse::<IpAddr>()
            .map(|ip| ip.is_ipv6())
            .unwrap_or(false);
        let kubelet =
            component::complete(kubelet_user.as_ref(), component::kubelet_defaults(&cluster));
        let kube_proxy = component::complete(
            kube_proxy_user.as_ref(),
            component::kube_proxy_defaults(&cluster, ipv6),
        );
        Ok(InitConfig {
            init,
            cluster,
            kubelet,
            kube_proxy,
            kubelet_user,
            version,
            ha: None,
            control_plane: crate::mode::ControlPlaneConfiguration::with_mode(""),
        })
    }

    /// The version table's row for this cluster.
    pub fn info(&self) -> &'static MinorInfo {
        // `complete` only accepts versions that have a row.
        self.version.info().unwrap_or_else(|_| version::newest())
    }

    /// The node name.
    pub fn node_name(&self) -> &str {
        &self.init.node_registration.name
    }

    /// The advertise address as an IP (validated by `complete`).
    pub fn advertise_ip(&self) -> Option<IpAddr> {
        self.init.local_api_endpoint.advertise_address.parse().ok()
    }

    /// The API server's port on this node.
    pub fn bind_port(&self) -> u16 {
        u16::try_from(self.init.local_api_endpoint.bind_port).unwrap_or(6443)
    }

    /// `https://<advertise>:<port>`: where this node's API server listens.
    pub fn local_api_server_url(&self) -> String {
        format!(
            "https://{}",
            net::join_host_port(
                &self.init.local_api_endpoint.advertise_address,
                self.bind_port()
            )
        )
    }

    /// `https://<controlPlaneEndpoint host>:<its port or bindPort>`, or the local URL when no
    /// endpoint is configured.
    pub fn control_plane_url(&self) -> String {
        match validate::host_port(&self.cluster.control_plane_endpoint) {
            Ok((host, port)) if !self.cluster.control_plane_endpoint.is_empty() => {
                format!(
                    "https://{}",
                    net::join_host_port(&host, port.unwrap_or(self.bind_port()))
                )
            }
            _ => self.local_api_server_url(),
        }
    }

    /// True when etcd runs locally as a static Pod.
    pub fn local_etcd(&self) -> Option<&LocalEtcd> {
        self.cluster.etcd.local.as_ref()
    }
}

/// Everything `kubeadm join` needs.
#[derive(Debug, Clone)]
pub struct JoinConfig {
    /// The JoinConfiguration, defaulted.
    pub join: JoinConfiguration,
    /// Our HighAvailabilityConfiguration document of the join's file (defaulted and validated
    /// by the caller): a control-plane join writes this node's part of the endpoint.
    pub ha: Option<crate::ha::HighAvailabilityConfiguration>,
    /// Our ControlPlaneConfiguration document of the join's file (defaulted, validated by the
    /// caller): how a control-plane join runs its etcd member and components.
    pub control_plane: crate::mode::ControlPlaneConfiguration,
}

impl JoinConfig {
    /// Defaults, completes and validates a JoinConfiguration.
    pub fn complete(
        mut join: JoinConfiguration,
        facts: &HostFacts,
        cri_given: bool,
        file: &str,
    ) -> Result<Self, ConfigError> {
        defaults::join(&mut join);
        defaults::dynamic_join(&mut join, cri_given, facts)?;
        validate::join(&join)
            .into_result()
            .map_err(|errors| ConfigError::Invalid {
                file: file.to_string(),
                errors,
            })?;
        Ok(JoinConfig {
            join,
            ha: None,
            control_plane: crate::mode::ControlPlaneConfiguration::with_mode(""),
        })
    }
}
