//! Kubeconfig files with embedded client certificates: building them and reading them back.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::PkiError;

/// What goes into a kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeconfigData {
    /// Cluster name (ClusterConfiguration.clusterName).
    pub cluster: String,
    /// API server URL.
    pub server: String,
    /// CA certificate PEM (embedded as certificate-authority-data).
    pub ca_pem: String,
    /// User name.
    pub user: String,
    /// Client certificate PEM.
    pub client_cert_pem: String,
    /// Client key PEM.
    pub client_key_pem: String,
}

const REDACTED: &str = "REDACTED";

fn document(d: &KubeconfigData, key_data: &str) -> Value {
    let context = format!("{}@{}", d.user, d.cluster);
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": d.cluster, "cluster": {"certificate-authority-data": STANDARD.encode(&d.ca_pem), "server": d.server}}],
        "contexts": [{"name": context, "context": {"cluster": d.cluster, "user": d.user}}],
        "current-context": context,
        "preferences": {},
        "users": [{"name": d.user, "user": {"client-certificate-data": STANDARD.encode(&d.client_cert_pem), "client-key-data": key_data}}],
    })
}

/// The kubeconfig as YAML, and the same with the client key replaced by `REDACTED` (for
/// dry-run output).
pub fn build(d: &KubeconfigData) -> Result<(String, String), PkiError> {
    let yaml = kubeadm_api::encode::to_yaml(&document(d, &STANDARD.encode(&d.client_key_pem)))
        .map_err(|e| PkiError::Crypto(e.to_string()))?;
    let shown = kubeadm_api::encode::to_yaml(&document(d, REDACTED))
        .map_err(|e| PkiError::Crypto(e.to_string()))?;
    Ok((yaml, shown))
}

/// The parts of an existing kubeconfig kubeadm checks (current context's cluster and user).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedKubeconfig {
    /// Server URL.
    pub server: String,
    /// Embedded CA PEM.
    pub ca_pem: String,
    /// User name.
    pub user: String,
    /// Embedded client certificate PEM (empty when the file points at a file instead).
    pub client_cert_pem: String,
    /// Embedded client key PEM.
    pub client_key_pem: String,
    /// `client-certificate` path when not embedded (kubelet.conf after TLS bootstrap).
    pub client_cert_file: String,
    /// The current context's cluster name.
    pub cluster: String,
}

/// Reads a kubeconfig. `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<ParsedKubeconfig, PkiError> {
    let bad = |problem: String| PkiError::BadFile {
        file: file.to_string(),
        problem,
    };
    let v: Value =
        serde_saphyr::from_str(text).map_err(|e| bad(format!("not a kubeconfig: {e}")))?;
    let current = v
        .get("current-context")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let find = |list: &str, name: &str| -> Option<Value> {
        v.get(list)?
            .as_array()?
            .iter()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
            .cloned()
    };
    let ctx = find("contexts", current)
        .ok_or_else(|| bad(format!("current context {current:?} not found")))?;
    let cluster_name = ctx
        .pointer("/context/cluster")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let user_name = ctx
        .pointer("/context/user")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let cluster = find("clusters", cluster_name)
        .ok_or_else(|| bad(format!("cluster {cluster_name:?} not found")))?;
    let user =
        find("users", user_name).ok_or_else(|| bad(format!("user {user_name:?} not found")))?;
    let data = |node: &Value, ptr: &str| -> Result<String, PkiError> {
        match node.pointer(ptr).and_then(Value::as_str) {
            None => Ok(String::new()),
            Some(b) => STANDARD
                .decode(b.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok())
                .ok_or_else(|| bad(format!("{ptr} is not valid base64 PEM"))),
        }
    };
    Ok(ParsedKubeconfig {
        server: cluster
            .pointer("/cluster/server")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        ca_pem: data(&cluster, "/cluster/certificate-authority-data")?,
        user: user_name.to_string(),
        client_cert_pem: data(&user, "/user/client-certificate-data")?,
        client_key_pem: data(&user, "/user/client-key-data")?,
        client_cert_file: user
            .pointer("/user/client-certificate")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        cluster: cluster_name.to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_reads_back() {
        let d = KubeconfigData {
            cluster: "kubernetes".into(),
            server: "https://10.0.0.1:6443".into(),
            ca_pem: "CA".into(),
            user: "kubernetes-admin".into(),
            client_cert_pem: "CERT".into(),
            client_key_pem: "KEY".into(),
        };
        let (yaml, shown) = build(&d).unwrap();
        assert!(
            yaml.contains("current-context: kubernetes-admin@kubernetes"),
            "{yaml}"
        );
        assert!(!shown.contains(&STANDARD.encode("KEY")) && shown.contains(REDACTED));
        let p = parse("admin.conf", &yaml).unwrap();
        assert_eq!(
            (
                p.server.as_str(),
                p.ca_pem.as_str(),
                p.user.as_str(),
                p.client_key_pem.as_str()
            ),
            ("https://10.0.0.1:6443", "CA", "kubernetes-admin", "KEY")
        );
    }
}
