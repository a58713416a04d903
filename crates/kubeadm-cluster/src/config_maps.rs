//! upload-config: the kube-system ConfigMaps `kubeadm-config` (ClusterConfiguration in the API
//! version the cluster's kubeadm reads) and `kubelet-config` (the KubeletConfiguration; named
//! `kubelet-config-1.N` before 1.24).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kubeadm_api::config::InitConfig;
use kubeadm_api::v1beta4::ClusterConfiguration;

use crate::{ClusterError, meta};

/// Name of the kubeadm config ConfigMap.
pub const KUBEADM_CONFIG: &str = "kubeadm-config";
/// Name of the kubelet config ConfigMap (1.24 and later, unless a gate says otherwise).
pub const KUBELET_CONFIG: &str = "kubelet-config";

/// Name of the kubelet config ConfigMap of a cluster with this configuration (also the name,
/// prefixed with `kubeadm:`, of the Role and RoleBinding letting nodes read it).
pub fn kubelet_config_name(cfg: &InitConfig) -> String {
    cfg.info()
        .kubelet_config_map_name(&cfg.cluster.feature_gates)
}

/// The names the kubelet config ConfigMap may have in a cluster whose kubeadm-config holds
/// `cluster`, most likely first: the name its version and gates give, then the other naming
/// (a cluster upgraded across 1.24, or whose gate changed, may still have the other one, also
/// under the previous minor's versioned name).
/// An unreadable or unsupported version gives [`KUBELET_CONFIG`] first.
pub fn kubelet_config_names(cluster: Option<&ClusterConfiguration>) -> Vec<String> {
    let row = cluster.and_then(|c| {
        let v = kubeadm_api::version::KubeVersion::parse(&c.kubernetes_version).ok()?;
        Some((v.info().ok()?, c))
    });
    match row {
        Some((info, c)) => {
            let first = info.kubelet_config_map_name(&c.feature_gates);
            if first == KUBELET_CONFIG {
                // Also the previous minor's name: kubeadm-config may already name the target
                // of an upgrade from 1.23 whose upload-config has not run yet.
                vec![
                    first,
                    format!("{KUBELET_CONFIG}-1.{}", info.minor),
                    format!("{KUBELET_CONFIG}-1.{}", info.minor.saturating_sub(1)),
                ]
            } else {
                vec![first, KUBELET_CONFIG.to_string()]
            }
        }
        None => vec![KUBELET_CONFIG.to_string()],
    }
}

fn yaml<T: serde::Serialize>(what: &'static str, v: &T) -> Result<String, ClusterError> {
    kubeadm_api::encode::to_yaml(v).map_err(|e| ClusterError::Encode {
        what,
        detail: e.to_string(),
    })
}

/// The ClusterConfiguration text: v1beta3 below 1.31, v1beta4 from 1.31.
pub fn cluster_configuration(cfg: &InitConfig) -> Result<String, ClusterError> {
    if cfg.info().config_api_version() == kubeadm_api::v1beta4::API_VERSION {
        let mut c = cfg.cluster.clone();
        c.api_version = kubeadm_api::v1beta4::API_VERSION.into();
        c.kind = "ClusterConfiguration".into();
        yaml("ClusterConfiguration", &c)
    } else {
        let timeout = cfg
            .init
            .timeouts
            .as_ref()
            .and_then(|t| t.control_plane_component_health_check);
        let c = kubeadm_api::v1beta3::ClusterConfiguration::from_v1beta4(&cfg.cluster, timeout);
        yaml("ClusterConfiguration", &c)
    }
}

/// kube-system/kubeadm-config.
pub fn kubeadm_config(cfg: &InitConfig) -> Result<ConfigMap, ClusterError> {
    Ok(ConfigMap {
        metadata: meta(KUBEADM_CONFIG, Some("kube-system")),
        data: Some(BTreeMap::from([(
            "ClusterConfiguration".to_string(),
            cluster_configuration(cfg)?,
        )])),
        ..Default::default()
    })
}

/// kube-system/kubelet-config (`kubelet-config-1.N` before 1.24), key `kubelet`.
pub fn kubelet_config(cfg: &InitConfig) -> Result<ConfigMap, ClusterError> {
    Ok(ConfigMap {
        metadata: meta(&kubelet_config_name(cfg), Some("kube-system")),
        data: Some(BTreeMap::from([(
            "kubelet".to_string(),
            yaml("KubeletConfiguration", &cfg.kubelet)?,
        )])),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubeadm_api::defaults::HostFacts;

    fn cfg(version: &str) -> InitConfig {
        let (mut init, mut cluster, k, p) = InitConfig::start(Default::default());
        cluster.kubernetes_version = version.into();
        init.node_registration.name = "cp".into();
        init.local_api_endpoint.advertise_address = "10.0.0.1".into();
        let facts = HostFacts {
            hostname: "cp".into(),
            default_ip: Some("10.0.0.1".parse().unwrap()),
            ..Default::default()
        };
        InitConfig::complete(init, cluster, k, p, &facts, true, "test").unwrap()
    }

    #[test]
    fn api_version_follows_the_cluster_minor() {
        let old = cluster_configuration(&cfg("v1.30.0")).unwrap();
        assert!(old.contains("apiVersion: kubeadm.k8s.io/v1beta3"), "{old}");
        let new = cluster_configuration(&cfg("v1.31.0")).unwrap();
        assert!(new.contains("apiVersion: kubeadm.k8s.io/v1beta4"), "{new}");
        assert!(new.contains("kind: ClusterConfiguration"), "{new}");
        // What we upload decodes again with the strict decoder.
        let docs = kubeadm_api::decode::decode("uploaded", &new).unwrap();
        assert!(docs.cluster.is_some());
        let docs = kubeadm_api::decode::decode("uploaded", &old).unwrap();
        assert!(docs.cluster.is_some());
    }

    #[test]
    fn kubelet_config_map() {
        let cm = kubelet_config(&cfg("v1.31.0")).unwrap();
        assert_eq!(cm.metadata.name.as_deref(), Some("kubelet-config"));
        assert!(cm.data.unwrap()["kubelet"].contains("kind: KubeletConfiguration"));
        let cm = kubelet_config(&cfg("v1.22.17")).unwrap();
        assert_eq!(cm.metadata.name.as_deref(), Some("kubelet-config-1.22"));
        let cm = kubelet_config(&cfg("v1.23.17")).unwrap();
        assert_eq!(cm.metadata.name.as_deref(), Some("kubelet-config-1.23"));
    }

    #[test]
    fn kubelet_config_names_follow_the_cluster_version() {
        let c = |v: &str| {
            let mut c = cfg(v).cluster;
            c.kubernetes_version = v.into();
            c
        };
        assert_eq!(
            kubelet_config_names(Some(&c("v1.23.17"))),
            ["kubelet-config-1.23", "kubelet-config"]
        );
        assert_eq!(
            kubelet_config_names(Some(&c("v1.24.17"))),
            [
                "kubelet-config",
                "kubelet-config-1.24",
                "kubelet-config-1.23"
            ]
        );
        let mut gated = c("v1.23.17");
        gated
            .feature_gates
            .insert("UnversionedKubeletConfigMap".into(), true);
        assert_eq!(kubelet_config_names(Some(&gated))[0], "kubelet-config");
        assert_eq!(kubelet_config_names(None), ["kubelet-config"]);
    }
}
