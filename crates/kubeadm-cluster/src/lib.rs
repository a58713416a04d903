//! Pure builders of the objects `kubeadm init` and `kubeadm token` create in the cluster, as
//! k8s-openapi values: bootstrap-token Secrets, the bootstrap RBAC, the cluster-info ConfigMap,
//! the cluster-info JWS signer/verifier, token discovery's checks and the kubeadm-certs
//! encryption. No I/O.

pub mod addons;
pub mod certs_secret;
pub mod cluster_info;
pub mod config_maps;
pub mod discovery;
pub mod jws;
pub mod merge;
pub mod node;
pub mod rbac;
pub mod token;

/// Why an object could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The certificate key is not 32 bytes of hex.
    #[error("invalid certificate key: {0}")]
    CertificateKey(String),
    /// Encryption or decryption failed.
    #[error("kubeadm-certs: {0}")]
    Crypto(String),
    /// A value could not be encoded.
    #[error("cannot encode {what}: {detail}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// Encoder message.
        detail: String,
    },
    /// A bootstrap token's TTL or expiry is unusable.
    #[error("invalid bootstrap token {id}: {detail}")]
    Token {
        /// Token id.
        id: String,
        /// What is wrong.
        detail: String,
    },
}

impl kubeadm_errors::Hint for ClusterError {
    /// A cluster object that cannot be built is a bug or bad input already named by the
    /// error; there is no separate fix to point at.
    fn hint(&self) -> Option<String> {
        None
    }
}

/// `metadata` with a name and optional namespace.
pub(crate) fn meta(
    name: &str,
    namespace: Option<&str>,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        ..Default::default()
    }
}
