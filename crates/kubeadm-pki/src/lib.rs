//! kubeadm's PKI as pure functions (bytes in, bytes out): the one certificate table, key
//! generation, signing, checking existing certificates, CSRs, kubeconfigs and the discovery
//! CA hash. Phases and commands in the binary do the file I/O.

pub mod cert;
pub mod keys;
pub mod kubeconfig;
pub mod sans;
pub mod table;

pub use cert::{CertInfo, CertRequest, Issued};
pub use keys::{KeyAlgorithm, PrivateKey};
pub use sans::AltNames;
pub use table::{CERTS, CertSpec, KUBECONFIGS, KubeconfigSpec};

use kubeadm_api::config::InitConfig;

/// Why a PKI operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// An existing file cannot be used.
    #[error("{file}: {problem}")]
    BadFile {
        /// The file (as the operator knows it).
        file: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A configuration value cannot be turned into a certificate.
    #[error("{field}: {problem}")]
    Config {
        /// The field path.
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// Unknown `encryptionAlgorithm`.
    #[error(
        "unknown encryption algorithm {0:?}: expected RSA-2048, RSA-3072, RSA-4096, ECDSA-P256 or ECDSA-P384"
    )]
    Algorithm(String),
    /// Key generation or signing failed.
    #[error("{0}")]
    Crypto(String),
}

impl PkiError {
    /// What the operator can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            PkiError::BadFile { .. } => Some("remove the file (and its key) to let kubeadm generate it again, or replace it with one that matches the cluster's CA and names".into()),
            PkiError::Config { .. } | PkiError::Algorithm(_) => Some("correct the configuration value".into()),
            PkiError::Crypto(_) => None,
        }
    }
}

/// `sha256:<hex>` over the DER SubjectPublicKeyInfo of a CA certificate (the
/// `--discovery-token-ca-cert-hash` value).
pub fn ca_cert_hash(ca: &CertInfo) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &ca.spki);
    format!("sha256:{}", hex::encode(d.as_ref()))
}

/// The request for a table row under a configuration: CN, O, usages, SANs and validity.
pub fn request_for(spec: &CertSpec, cfg: &InitConfig) -> Result<CertRequest, PkiError> {
    let validity = if spec.is_ca() {
        cfg.cluster.ca_certificate_validity_period
    } else {
        cfg.cluster.certificate_validity_period
    };
    let default = if spec.is_ca() {
        10 * 365 * 24 * 3600
    } else {
        365 * 24 * 3600
    };
    Ok(CertRequest {
        cn: spec.common_name(cfg.node_name()).to_string(),
        orgs: spec.orgs.iter().map(|s| s.to_string()).collect(),
        usage: spec.usage,
        alt: sans::for_spec(spec, cfg)?,
        validity: validity
            .map(|d| d.to_std())
            .unwrap_or(std::time::Duration::from_secs(default)),
    })
}

/// The client-certificate request of a kubeconfig row.
pub fn kubeconfig_request(spec: &KubeconfigSpec, cfg: &InitConfig) -> CertRequest {
    CertRequest {
        cn: spec.user(cfg.node_name()),
        orgs: spec.orgs(cfg.info().has_super_admin()),
        usage: table::Usage::Client,
        alt: AltNames::default(),
        validity: cfg
            .cluster
            .certificate_validity_period
            .map(|d| d.to_std())
            .unwrap_or(std::time::Duration::from_secs(365 * 24 * 3600)),
    }
}

/// The API server URL a kubeconfig row points at.
pub fn kubeconfig_server(spec: &KubeconfigSpec, cfg: &InitConfig) -> String {
    match spec.server {
        table::ServerKind::ControlPlane => cfg.control_plane_url(),
        table::ServerKind::Local => cfg.local_api_server_url(),
    }
}
