//! The pure checks of token discovery: the cluster-info kubeconfig's shape, its JWS signature,
//! and the CA public-key pins. No I/O, so every refusal is unit-tested here.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kubeadm_api::BootstrapTokenString;
use kubeadm_pki::CertInfo;
use serde_json::Value;

use super::DiscoveryError;

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
    if !kubeadm_cluster::jws::verify(kubeconfig, jws, token.id(), token.secret()) {
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
        let pem = kubeadm_testapi::pki::TestPki::generate()
            .unwrap()
            .ca_cert_pem;
        let info = CertInfo::from_pem("ca", &pem).unwrap();
        (pem, kubeadm_pki::ca_cert_hash(&info))
    }

    fn data(kubeconfig: &str, token: &BootstrapTokenString) -> BTreeMap<String, String> {
        BTreeMap::from([
            (KUBECONFIG_KEY.to_string(), kubeconfig.to_string()),
            (
                format!("{JWS_KEY_PREFIX}{}", token.id()),
                kubeadm_cluster::jws::sign(kubeconfig, token.id(), token.secret()),
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
        let kc = kubeadm_cluster::cluster_info::kubeconfig("https://10.0.0.1:6443", pem.as_bytes())
            .unwrap();
        let info = parse_cluster_kubeconfig("cluster-info", &kc).unwrap();
        assert_eq!(info.server, "https://10.0.0.1:6443");
        assert_eq!(info.ca_pem, pem);
        let two =
            "clusters:\n- name: a\n  cluster: {server: x}\n- name: b\n  cluster: {server: y}\n";
        let err = parse_cluster_kubeconfig("cluster-info", two).unwrap_err();
        assert!(err.to_string().contains("single cluster"), "{err}");
    }
}
