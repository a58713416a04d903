//! The one CA rule (issue 13, defect 3): an expired or not-yet-valid CA never signs, and names
//! its dates; a user CA made the usual way (`openssl req -x509`, no SAN, no keyUsage) is
//! accepted; a CA whose keyUsage lacks keyCertSign, or a non-CA, is refused.

use kubeadm_errors::Hint;
use std::path::Path;
use std::process::Command;

use jiff::{SignedDuration, Timestamp};
use kubeadm_pki::cert::{Authority, check_ca, check_existing, sign};
use kubeadm_pki::table::Usage;
use kubeadm_pki::{AltNames, CertInfo, CertRequest, KeyAlgorithm, PkiError, PrivateKey};

fn leaf() -> CertRequest {
    CertRequest {
        cn: "kube-apiserver".into(),
        orgs: vec![],
        usage: Usage::Server,
        alt: AltNames::default(),
        validity: std::time::Duration::from_secs(3600),
    }
}

fn ca_request() -> CertRequest {
    let mut alt = AltNames::default();
    alt.push("kubernetes");
    CertRequest {
        cn: "kubernetes".into(),
        orgs: vec![],
        usage: Usage::Ca,
        alt,
        validity: std::time::Duration::from_secs(3600),
    }
}

/// A CA made by the openssl CLI with extra `openssl req` arguments; `None` (with a message)
/// when openssl is missing outside CI.
fn openssl_ca(dir: &Path, extra: &[&str]) -> Option<(CertInfo, PrivateKey)> {
    let key = dir.join("ca.key");
    let crt = dir.join("ca.crt");
    let mut args = vec![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=my-corporate-ca",
        "-days",
        "30",
    ];
    args.extend_from_slice(extra);
    let key_s = key.display().to_string();
    let crt_s = crt.display().to_string();
    args.extend_from_slice(&["-keyout", &key_s, "-out", &crt_s]);
    match Command::new("openssl").args(&args).output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!("openssl failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            assert!(std::env::var("CI").is_err(), "openssl is needed: {e}");
            eprintln!("skipped: no openssl ({e})");
            return None;
        }
    }
    let info = CertInfo::from_pem("ca.crt", &std::fs::read_to_string(&crt).unwrap()).unwrap();
    let k = PrivateKey::from_pem("ca.key", &std::fs::read_to_string(&key).unwrap()).unwrap();
    Some((info, k))
}

/// Signs the test leaf with `key` under the CA `ca_der` (whose key is `ca_key`) at `now`.
fn sign_leaf(
    ca_der: &[u8],
    ca_key: &PrivateKey,
    key: &PrivateKey,
    now: Timestamp,
) -> Result<kubeadm_pki::Issued, PkiError> {
    sign(
        &leaf(),
        key,
        &Authority {
            cert_der: ca_der,
            key: ca_key,
        },
        now,
    )
}

#[test]
fn a_plain_openssl_ca_is_accepted_and_signs() {
    let dir = tempfile::tempdir().unwrap();
    // Debian's default `v3_ca`: basicConstraints CA:TRUE, no keyUsage, no SAN.
    let Some((ca, key)) = openssl_ca(dir.path(), &[]) else {
        return;
    };
    assert!(ca.alt.dns.is_empty(), "the usual CA has no SAN");
    check_existing(
        "/etc/kubernetes/pki/ca.crt",
        &ca,
        Some(&key),
        None,
        &ca_request(),
    )
    .unwrap();
    let k = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    sign_leaf(&ca.der, &key, &k, Timestamp::now()).unwrap();
}

#[test]
fn a_ca_without_key_cert_sign_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let Some((ca, key)) = openssl_ca(
        dir.path(),
        &[
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,digitalSignature",
        ],
    ) else {
        return;
    };
    let e = check_existing(
        "/etc/kubernetes/pki/ca.crt",
        &ca,
        Some(&key),
        None,
        &ca_request(),
    )
    .unwrap_err();
    assert!(matches!(e, PkiError::BadCa { .. }), "{e:?}");
    assert!(e.to_string().contains("keyCertSign"), "{e}");
}

#[test]
fn expired_and_future_cas_never_sign_and_name_their_dates() {
    let keys = PrivateKey::generate_many(KeyAlgorithm::EcdsaP256, 2).unwrap();
    let now = Timestamp::now();
    // Issued 2 h ago for 1 h: expired an hour ago.
    let expired = kubeadm_pki::cert::self_signed(
        &ca_request(),
        &keys[0],
        now - SignedDuration::from_hours(2),
    )
    .unwrap();
    // Issued (NotBefore) a day from now.
    let future = kubeadm_pki::cert::self_signed(
        &ca_request(),
        &keys[0],
        now + SignedDuration::from_hours(24),
    )
    .unwrap();
    for (which, ca, words) in [
        ("expired", &expired, "has expired"),
        ("future", &future, "is not valid yet"),
    ] {
        let e = sign_leaf(&ca.der, &keys[0], &keys[1], now).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains(words) && text.contains("valid from") && text.contains("kubernetes"),
            "{which}: {text}"
        );
        assert!(e.hint().unwrap().contains("clock"), "{which}");
        let info = CertInfo::from_der("ca.crt", &ca.der).unwrap();
        let e = check_ca("/etc/kubernetes/pki/ca.crt", &info, now.as_second())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/etc/kubernetes/pki/ca.crt "), "{e}");
    }
}

#[test]
fn a_leaf_is_not_a_ca() {
    let keys = PrivateKey::generate_many(KeyAlgorithm::EcdsaP256, 2).unwrap();
    let now = Timestamp::now();
    let ca = kubeadm_pki::cert::self_signed(&ca_request(), &keys[0], now).unwrap();
    let l = sign_leaf(&ca.der, &keys[0], &keys[1], now).unwrap();
    let info = CertInfo::from_der("apiserver.crt", &l.der).unwrap();
    let e = check_ca("apiserver.crt", &info, now.as_second())
        .unwrap_err()
        .to_string();
    assert!(e.contains("is not a CA"), "{e}");
}
