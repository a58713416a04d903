//! The pure checks of token discovery (`kubeadm join`): the cluster-info kubeconfig's shape, its
//! JWS signature, and the CA public-key pins, with the errors of discovery as a whole. No I/O, so
//! every refusal is unit-tested here and fuzzed (`fuzz/fuzz_targets/cluster_info.rs`).

use kubeadm_errors::Hint;
use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kubeadm_api::BootstrapTokenString;
use kubeadm_pki::CertInfo;
use serde_json::Value;

/// Why discovery refused or failed. Every refusal happens before anything is written.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// cluster-info or the discovery file is not a usable kubeconfig.
    #[error("invalid {origin}: {problem}")]
    BadClusterInfo {
        /// Where it came from.
        origin: String,
        /// What is wrong.
        problem: String,
    },
    /// No `jws-kubeconfig-<id>` for this token (yet).
    #[error(
        "token id {token_id:?} is invalid for this cluster or it has expired: cluster-info carries no signature for it"
    )]
    NoSignature {
        /// The token id.
        token_id: String,
    },
    /// The signature does not match: the token is wrong or cluster-info was altered.
    #[error(
        "failed to verify JWS signature of received cluster info object, can't trust this API Server"
    )]
    BadSignature,
    /// A `--discovery-token-ca-cert-hash` value is malformed.
    #[error(
        "invalid discovery token CA certificate hash {value:?}: expected \"sha256:\" followed by 64 hex characters"
    )]
    BadPin {
        /// The value given.
        value: String,
    },
    /// The cluster's CA matches no pin.
    #[error(
        "cluster CA found in cluster-info ConfigMap is invalid: none of the public keys \"{found}\" are pinned"
    )]
    PinMismatch {
        /// Hashes of the CAs found.
        found: String,
    },
    /// Neither pins nor the explicit opt-out.
    #[error(
        "using token-based discovery without caCertHashes can be unsafe; set unsafeSkipCAVerification or pass --discovery-token-unsafe-skip-ca-verification to continue"
    )]
    NoPins,
    /// The verified second fetch returned something else than the first.
    #[error(
        "the second kubeconfig from the cluster-info ConfigMap (using validated TLS) was different from the first"
    )]
    SecondFetchDiffers,
    /// The API server could not be asked (in time).
    #[error("could not get cluster-info from {endpoint} within {waited:?}: {detail}")]
    Unreachable {
        /// `host:port` or URL asked.
        endpoint: String,
        /// The last error.
        detail: String,
        /// How long discovery waited.
        waited: Duration,
        /// True for the fetch verified with the pinned CA.
        verified: bool,
    },
    /// The discovery file or URL could not be read.
    #[error("cannot read the discovery file {path}: {detail}")]
    File {
        /// Path or URL.
        path: String,
        /// What failed.
        detail: String,
    },
    /// No discovery method configured.
    #[error(
        "no discovery method: pass --token (or --discovery-token) with an API server endpoint, or --discovery-file"
    )]
    NoMethod,
}

impl Hint for DiscoveryError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            DiscoveryError::NoSignature { .. } => {
                "create a new token with `kubeadm token create --print-join-command` on a control-plane node".into()
            }
            DiscoveryError::BadSignature => {
                "check the token; if it is right, the server is not the cluster you think it is".into()
            }
            DiscoveryError::BadPin { .. } | DiscoveryError::PinMismatch { .. } => {
                "use the --discovery-token-ca-cert-hash printed by `kubeadm init` (or `kubeadm token create --print-join-command`)".into()
            }
            DiscoveryError::NoPins => {
                "pin the cluster CA with --discovery-token-ca-cert-hash sha256:<hash>".into()
            }
            DiscoveryError::Unreachable { verified: true, .. } => {
                "the server's certificate is not signed by the pinned cluster CA (or its name does not match the endpoint): you may be talking to an impostor".into()
            }
            DiscoveryError::Unreachable { .. } => {
                "check the API server endpoint and that the cluster's API server is reachable from this node; raise timeouts.discovery if it is slow".into()
            }
            DiscoveryError::SecondFetchDiffers => {
                "cluster-info changed between the two reads; try again".into()
            }
            DiscoveryError::BadClusterInfo { .. } | DiscoveryError::File { .. } => {
                "the discovery kubeconfig must hold exactly one cluster with a server and certificate-authority-data".into()
            }
            DiscoveryError::NoMethod => "see `kubeadm join --help`".into(),
        })
    }
}

/// Prefix of the signature keys the bootstrapsigner adds to cluster-info.
pub const JWS_KEY_PREFIX: &str = "jws-kubeconfig-";
/// The key holding the kubeconfig.
pub const KUBECONFIG_KEY: &str = "kubeconfig";

/// The one cluster of a cluster-info (or discovery file) kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    /// The API server URL the cluster publishes.
    pub server: String,
    /// The CA bundle PEM (one or more certificates).
    pub ca_pem: String,
}

/// Reads a kubeconfig that must hold exactly one cluster with a server and embedded CA data.
pub fn parse_cluster_kubeconfig(source: &str, text: &str) -> Result<ClusterInfo, DiscoveryError> {
    let bad = |problem: String| DiscoveryError::BadClusterInfo {
        origin: source.to_string(),
        problem,
    };
    let v: Value =
        serde_saphyr::from_str(text).map_err(|e| bad(format!("not a kubeconfig: {e}")))?;
    let clusters = v
        .get("clusters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if clusters.len() != 1 {
        return Err(bad(format!(
            "expected the kubeconfig to have a single cluster, but it had {}",
            clusters.len()
        )));
    }
    let cluster = &clusters[0]["cluster"];
    let server = cluster["server"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("the cluster has no server".into()))?
        .to_string();
    let ca_b64 = cluster["certificate-authority-data"]
        .as_str()
        .ok_or_else(|| bad("the cluster has no certificate-authority-data".into()))?;
    let ca_pem = STANDARD
        .decode(ca_b64.trim())
        .ok()
        .and_then(|d| String::from_utf8(d).ok())
        .ok_or_else(|| bad("certificate-authority-data is not base64 PEM".into()))?;
    Ok(ClusterInfo { server, ca_pem })
}

/// Returns the kubeconfig of a cluster-info ConfigMap's data after checking its signature for
/// `token`. A missing signature is [`DiscoveryError::NoSignature`] (worth retrying: the
/// bootstrapsigner may not have run yet); a wrong one is final.
pub fn verified_kubeconfig<'a>(
    data: &'a BTreeMap<String, String>,
    token: &BootstrapTokenString,
) -> Result<&'a str, DiscoveryError> {
    let kubeconfig = data
        .get(KUBECONFIG_KEY)
        .ok_or_else(|| DiscoveryError::BadClusterInfo {
            origin: "cluster-info".into(),
            problem: "there is no kubeconfig key".into(),
        })?;
    let jws = data
        .get(&format!("{JWS_KEY_PREFIX}{}", token.id()))
        .ok_or_else(|| DiscoveryError::NoSignature {
            token_id: token.id().to_string(),
        })?;
    if !crate::jws::verify(kubeconfig, jws, token.id(), token.secret()) {
        return Err(DiscoveryError::BadSignature);
    }
    Ok(kubeconfig)
}

/// The `--discovery-token-ca-cert-hash` pins: SHA-256 digests of a CA's SubjectPublicKeyInfo.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins(Vec<String>);

impl Pins {
    /// Parses `sha256:<64 hex>` values (the prefix is matched case-insensitively, as upstream).
    pub fn parse(values: &[String]) -> Result<Self, DiscoveryError> {
        let mut out = Vec::new();
        for v in values {
            let pin = kubeadm_api::validate::parse_ca_cert_hash(v)
                .map_err(|_| DiscoveryError::BadPin { value: v.clone() })?;
            out.push(pin);
        }
        Ok(Pins(out))
    }

    /// True when no pin was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks that some certificate of the CA bundle matches some pin.
    pub fn check(&self, ca_pem: &str) -> Result<(), DiscoveryError> {
        let mut found = Vec::new();
        for block in
            pem::parse_many(ca_pem.as_bytes()).map_err(|e| DiscoveryError::BadClusterInfo {
                origin: "cluster-info".into(),
                problem: format!("the CA data is not PEM: {e}"),
            })?
        {
            let Ok(ca) = CertInfo::from_der("cluster-info CA", block.contents()) else {
                continue;
            };
            let hash = kubeadm_pki::ca_cert_hash(&ca);
            if self.0.contains(&hash) {
                return Ok(());
            }
            found.push(hash);
        }
        Err(DiscoveryError::PinMismatch {
            found: found.join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> (String, String) {
        use kubeadm_pki::{AltNames, CertRequest, KeyAlgorithm, PrivateKey};
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let req = CertRequest {
            cn: "kubernetes".into(),
            orgs: vec![],
            usage: kubeadm_pki::table::Usage::Ca,
            alt: AltNames::default(),
            validity: Duration::from_secs(3600),
        };
        let now = jiff::Timestamp::now();
        let pem = kubeadm_pki::cert::self_signed(&req, &key, now).unwrap().pem;
        let info = CertInfo::from_pem("ca", &pem).unwrap();
        (pem, kubeadm_pki::ca_cert_hash(&info))
    }

    fn data(kubeconfig: &str, token: &BootstrapTokenString) -> BTreeMap<String, String> {
        BTreeMap::from([
            (KUBECONFIG_KEY.to_string(), kubeconfig.to_string()),
            (
                format!("{JWS_KEY_PREFIX}{}", token.id()),
                crate::jws::sign(kubeconfig, token.id(), token.secret()),
            ),
        ])
    }

    #[test]
    fn signature_checked_with_the_token() {
        let token = BootstrapTokenString::parse("abcdef.0123456789abcdef").unwrap();
        let other = BootstrapTokenString::parse("abcdef.0123456789abcdee").unwrap();
        let d = data("kc", &token);
        assert_eq!(verified_kubeconfig(&d, &token).unwrap(), "kc");
        assert!(matches!(
            verified_kubeconfig(&d, &other),
            Err(DiscoveryError::BadSignature)
        ));
        let mut edited = d.clone();
        edited.insert(KUBECONFIG_KEY.into(), "kc2".into());
        assert!(matches!(
            verified_kubeconfig(&edited, &token),
            Err(DiscoveryError::BadSignature)
        ));
        let unknown = BootstrapTokenString::parse("zzzzzz.0123456789abcdef").unwrap();
        assert!(matches!(
            verified_kubeconfig(&d, &unknown),
            Err(DiscoveryError::NoSignature { .. })
        ));
    }

    #[test]
    fn pins_parse_and_match() {
        let (pem, hash) = ca();
        let upper = hash.replacen("sha256", "SHA256", 1);
        let pins = Pins::parse(&[upper]).unwrap();
        pins.check(&pem).unwrap();
        let (other_pem, other_hash) = ca();
        let pins = Pins::parse(std::slice::from_ref(&other_hash)).unwrap();
        let err = pins.check(&pem).unwrap_err();
        assert!(matches!(err, DiscoveryError::PinMismatch { ref found } if *found == hash));
        // Any pin may match, against any CA of a bundle.
        let both = Pins::parse(&[other_hash, hash.clone()]).unwrap();
        both.check(&format!("{other_pem}{pem}")).unwrap();
        let md5 = format!("md5:{}", "0".repeat(64));
        for bad in ["sha256:abc", md5.as_str(), "nocolon"] {
            assert!(Pins::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn cluster_info_must_hold_one_cluster() {
        let (pem, _) = ca();
        let kc = crate::cluster_info::kubeconfig("https://10.0.0.1:6443", pem.as_bytes()).unwrap();
        let info = parse_cluster_kubeconfig("cluster-info", &kc).unwrap();
        assert_eq!(info.server, "https://10.0.0.1:6443");
        assert_eq!(info.ca_pem, pem);
        let two =
            "clusters:\n- name: a\n  cluster: {server: x}\n- name: b\n  cluster: {server: y}\n";
        let err = parse_cluster_kubeconfig("cluster-info", two).unwrap_err();
        assert!(err.to_string().contains("single cluster"), "{err}");
    }
}
