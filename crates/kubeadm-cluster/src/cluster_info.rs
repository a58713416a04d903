//! The kube-public/cluster-info ConfigMap: a kubeconfig with one cluster (server + CA data).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;

use crate::{ClusterError, meta};

/// The ConfigMap name.
pub const NAME: &str = "cluster-info";
/// Its namespace.
pub const NAMESPACE: &str = "kube-public";

/// The kubeconfig text stored under `kubeconfig` (keys sorted as Go's client writes them).
pub fn kubeconfig(server: &str, ca_pem: &[u8]) -> Result<String, ClusterError> {
    let v = json!({
        "apiVersion": "v1",
        "clusters": [{"cluster": {"certificate-authority-data": STANDARD.encode(ca_pem), "server": server}, "name": ""}],
        "contexts": null, "current-context": "", "kind": "Config", "preferences": {}, "users": null,
    });
    kubeadm_api::encode::to_yaml(&v).map_err(|e| ClusterError::Encode {
        what: "cluster-info kubeconfig",
        detail: e.to_string(),
    })
}

/// The ConfigMap.
pub fn config_map(server: &str, ca_pem: &[u8]) -> Result<ConfigMap, ClusterError> {
    Ok(ConfigMap {
        metadata: meta(NAME, Some(NAMESPACE)),
        data: Some(BTreeMap::from([(
            "kubeconfig".to_string(),
            kubeconfig(server, ca_pem)?,
        )])),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cluster_with_server_and_ca() {
        let cm = config_map("https://10.0.0.1:6443", b"PEM").unwrap();
        let kc = &cm.data.unwrap()["kubeconfig"];
        assert!(kc.contains("server: https://10.0.0.1:6443"), "{kc}");
        assert!(kc.contains("certificate-authority-data: UEVN"), "{kc}");
        assert!(!kc.contains("token"), "{kc}");
        assert_eq!(kc.matches("server:").count(), 1);
    }
}
