//! A small throw-away PKI for tests: a cluster CA, a serving certificate for 127.0.0.1, client
//! certificates, and kubeconfigs pointing at the test server.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::{Error, SigningCa, TestApiConfig};

/// A CA with its serving certificate.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// CA certificate PEM.
    pub ca_cert_pem: String,
    /// CA key PEM.
    pub ca_key_pem: String,
    /// Serving certificate PEM (SANs 127.0.0.1, localhost, kubernetes).
    pub serving_cert_pem: String,
    /// Serving key PEM.
    pub serving_key_pem: String,
}

fn serial() -> rcgen::SerialNumber {
    let mut s = [0u8; 16];
    let _ = aws_lc_rs::rand::fill(&mut s);
    s[0] = (s[0] & 0x7f) | 1;
    rcgen::SerialNumber::from_slice(&s)
}

/// Now, as rcgen's validity fields want it: the test server's one use of the `time` crate
/// (everything else keeps `jiff` times).
pub(crate) fn rcgen_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn validity(p: &mut CertificateParams) {
    let now = rcgen_now();
    p.not_before = now - std::time::Duration::from_secs(300);
    p.not_after = now + std::time::Duration::from_secs(24 * 3600);
    p.serial_number = Some(serial());
}

impl TestPki {
    /// A fresh CA (CN kubernetes) and serving certificate (ECDSA P-256: fast to make).
    pub fn generate() -> Result<Self, Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::default();
        ca.distinguished_name.push(DnType::CommonName, "kubernetes");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        validity(&mut ca);
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca, &ca_key);
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::default();
        p.distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        p.subject_alt_names = vec![
            SanType::IpAddress([127, 0, 0, 1].into()),
            SanType::DnsName("localhost".try_into()?),
            SanType::DnsName("kubernetes".try_into()?),
        ];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        validity(&mut p);
        let cert = p.signed_by(&key, &issuer)?;
        Ok(TestPki {
            ca_cert_pem: ca_cert.pem(),
            ca_key_pem: ca_key.serialize_pem(),
            serving_cert_pem: cert.pem(),
            serving_key_pem: key.serialize_pem(),
        })
    }

    /// A client certificate and key signed by the CA: CN = `user`, one O per group.
    pub fn client_cert(&self, user: &str, groups: &[&str]) -> Result<(String, String), Error> {
        let ca_key = KeyPair::from_pem(&self.ca_key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&self.ca_cert_pem, ca_key)?;
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, user);
        for g in groups {
            p.distinguished_name.push(DnType::OrganizationName, *g);
        }
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut p);
        let cert = p.signed_by(&key, &issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// The server configuration for this PKI (client CA = signing CA = the CA).
    pub fn server_config(&self) -> TestApiConfig {
        TestApiConfig {
            serving_cert_pem: self.serving_cert_pem.clone(),
            serving_key_pem: self.serving_key_pem.clone(),
            client_ca_pem: self.ca_cert_pem.clone(),
            signing_ca: Some(SigningCa {
                cert_pem: self.ca_cert_pem.clone(),
                key_pem: self.ca_key_pem.clone(),
            }),
            git_version: "v1.37.0".into(),
        }
    }

    /// A kubeconfig for `server` authenticating with a client certificate.
    pub fn kubeconfig(&self, server: &str, user: &str, groups: &[&str]) -> Result<String, Error> {
        let (cert, key) = self.client_cert(user, groups)?;
        Ok(format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kubernetes\n  cluster:\n    server: {server}\n    certificate-authority-data: {}\ncontexts:\n- name: {user}@kubernetes\n  context:\n    cluster: kubernetes\n    user: {user}\ncurrent-context: {user}@kubernetes\nusers:\n- name: {user}\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
            STANDARD.encode(&self.ca_cert_pem),
            STANDARD.encode(cert),
            STANDARD.encode(key)
        ))
    }

    /// A kubeconfig for `server` authenticating with a bearer token.
    pub fn token_kubeconfig(&self, server: &str, token: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kubernetes\n  cluster:\n    server: {server}\n    certificate-authority-data: {}\ncontexts:\n- name: tls-bootstrap-token-user@kubernetes\n  context:\n    cluster: kubernetes\n    user: tls-bootstrap-token-user\ncurrent-context: tls-bootstrap-token-user@kubernetes\nusers:\n- name: tls-bootstrap-token-user\n  user:\n    token: {token}\n",
            STANDARD.encode(&self.ca_cert_pem)
        )
    }
}
