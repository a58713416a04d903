//! kubeadm's PKI as pure functions (bytes in, bytes out): the one certificate table, key
//! generation, signing, checking existing certificates, CSRs, kubeconfigs and the discovery
//! CA hash. Phases and commands in the binary do the file I/O.

pub mod cert;
pub mod keys;
pub mod kubeconfig;
pub mod sans;
pub mod supply;
pub mod table;

pub use cert::{CertInfo, CertRequest, Issued};
pub use keys::{KeyAlgorithm, PrivateKey};
pub use sans::AltNames;
pub use supply::KeySupply;
pub use table::{CERTS, CertSpec, KUBECONFIGS, KubeconfigSpec};

use kubeadm_api::config::InitConfig;
use kubeadm_errors::Hint;

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
    /// A CA cannot sign: not a CA, not allowed to sign, expired or not yet valid.
    #[error("{ca} {problem}")]
    BadCa {
        /// The CA (its file, or its CN).
        ca: String,
        /// What is wrong with it, with its dates.
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

impl Hint for PkiError {
    fn hint(&self) -> Option<String> {
        match self {
            PkiError::BadFile { .. } => Some("remove the file (and its key) to let kubeadm generate it again, or replace it with one that matches the cluster's CA and names".into()),
            PkiError::BadCa { .. } => Some("renew or replace the CA (every certificate it signed must then be issued again), or correct the system clock if it is wrong".into()),
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

/// The API server URL a kubeconfig row points at. With the `ControlPlaneKubeletLocalMode`
/// feature gate (1.31 and later) the kubelet of a control-plane node talks to its local API server.
pub fn kubeconfig_server(spec: &KubeconfigSpec, cfg: &InitConfig) -> String {
    let local_kubelet = spec.name == "kubelet"
        && cfg.info().minor >= 31
        && cfg
            .cluster
            .feature_gates
            .get("ControlPlaneKubeletLocalMode")
            .copied()
            .unwrap_or(false);
    if local_kubelet {
        return cfg.local_api_server_url();
    }
    match spec.server {
        table::ServerKind::ControlPlane => cfg.control_plane_url(),
        table::ServerKind::Local => cfg.local_api_server_url(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cert::{Authority, check_existing, self_signed, sign};
    use crate::table::Usage;

    fn req(cn: &str, usage: Usage, sans: &[&str]) -> CertRequest {
        let mut alt = AltNames::default();
        for s in sans {
            alt.push(s);
        }
        alt.normalize();
        CertRequest {
            cn: cn.into(),
            orgs: vec!["system:masters".into()],
            usage,
            alt,
            validity: std::time::Duration::from_secs(3600),
        }
    }

    #[test]
    fn signs_checks_and_detects_problems() {
        let now = jiff::Timestamp::now();
        let keys = PrivateKey::generate_many(KeyAlgorithm::EcdsaP256, 4).unwrap();
        let ca = self_signed(
            &req("kubernetes", Usage::Ca, &["kubernetes"]),
            &keys[0],
            now,
        )
        .unwrap();
        let other_ca = self_signed(
            &req("kubernetes", Usage::Ca, &["kubernetes"]),
            &keys[1],
            now,
        )
        .unwrap();
        let want = req("kube-apiserver", Usage::Server, &["node1", "10.96.0.1"]);
        let leaf = sign(
            &want,
            &keys[2],
            &Authority {
                cert_der: &ca.der,
                key: &keys[0],
            },
            now,
        )
        .unwrap();
        let (ca_i, other_i, leaf_i) = (
            CertInfo::from_der("ca", &ca.der).unwrap(),
            CertInfo::from_der("o", &other_ca.der).unwrap(),
            CertInfo::from_der("l", &leaf.der).unwrap(),
        );
        assert!(ca_i.is_ca && !leaf_i.is_ca && leaf_i.eku == (true, false));
        assert_eq!(
            leaf_i.not_before, ca_i.not_before,
            "leaf NotBefore is the CA's, as upstream"
        );
        assert!(now.as_second() - ca_i.not_before >= 299);
        assert!(leaf_i.serial[0] & 0x80 == 0);
        check_existing("apiserver.crt", &leaf_i, Some(&keys[2]), Some(&ca_i), &want).unwrap();
        let e = check_existing(
            "apiserver.crt",
            &leaf_i,
            Some(&keys[2]),
            Some(&other_i),
            &want,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("apiserver.crt") && e.contains("not signed by the current CA"),
            "{e}"
        );
        let e = check_existing("apiserver.crt", &leaf_i, Some(&keys[3]), Some(&ca_i), &want)
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not match"), "{e}");
        let e = check_existing(
            "apiserver.crt",
            &leaf_i,
            None,
            Some(&ca_i),
            &req("x", Usage::Server, &["node2"]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("DNS:node2"), "{e}");
        assert_eq!(leaf_i.to_request(want.validity), want);
        let h = ca_cert_hash(&ca_i);
        assert!(h.starts_with("sha256:") && h.len() == 7 + 64);
    }
}
