//! Issuing certificates (self-signed CAs, leaves signed by a CA, CSRs) and reading existing ones
//! back to check them: signer, key match, required names.

use std::net::IpAddr;

use jiff::{SignedDuration, Timestamp};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyUsagePurpose, SanType, SerialNumber,
};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::PkiError;
use crate::keys::{PrivateKey, pem_encode};
use crate::sans::AltNames;
use crate::table::Usage;

/// How far NotBefore is back-dated to tolerate clock skew between nodes.
pub const BACKDATE: SignedDuration = SignedDuration::from_mins(5);

/// What to put into a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRequest {
    /// Subject common name.
    pub cn: String,
    /// Subject organizations.
    pub orgs: Vec<String>,
    /// Usage class.
    pub usage: Usage,
    /// Subject alternative names.
    pub alt: AltNames,
    /// Validity from now.
    pub validity: std::time::Duration,
}

/// A certificate in both encodings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// PEM, as written to `.crt` files.
    pub pem: String,
    /// DER.
    pub der: Vec<u8>,
}

/// A CA able to sign: its certificate and key.
pub struct Authority<'a> {
    /// The CA certificate (DER).
    pub cert_der: &'a [u8],
    /// The CA key.
    pub key: &'a PrivateKey,
}

fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| PkiError::Crypto("the system random generator failed".into()))?;
    // Positive (top bit clear) and minimal (second-highest bit set), as RFC 5280 wants.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

/// `now + validity`, at the latest instant representable when that is beyond it.
fn expiry(now: Timestamp, validity: std::time::Duration) -> Timestamp {
    let secs = i64::try_from(validity.as_secs()).unwrap_or(i64::MAX);
    now.checked_add(SignedDuration::from_secs(secs))
        .unwrap_or(Timestamp::MAX)
}

/// The one place our time becomes rcgen's: rcgen's validity fields are `time` values.
fn rcgen_time(t: Timestamp) -> Result<time::OffsetDateTime, PkiError> {
    time::OffsetDateTime::from_unix_timestamp_nanos(t.as_nanosecond())
        .map_err(|e| PkiError::Crypto(format!("time {t} cannot go into a certificate: {e}")))
}

fn params(
    req: &CertRequest,
    key: &PrivateKey,
    not_before: Timestamp,
    now: Timestamp,
) -> Result<CertificateParams, PkiError> {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    // rcgen keeps one value per attribute type; a second O goes in under its OID spelled as a
    // custom type (same encoding). More than two cannot be expressed.
    match req.orgs.as_slice() {
        [] => {}
        [one] => dn.push(DnType::OrganizationName, one.as_str()),
        [one, two] => {
            dn.push(DnType::OrganizationName, one.as_str());
            dn.push(DnType::CustomDnType(vec![2, 5, 4, 10]), two.as_str());
        }
        _ => {
            return Err(PkiError::Config {
                field: "organizations".into(),
                problem: format!(
                    "at most two organizations are supported, got {}",
                    req.orgs.len()
                ),
            });
        }
    }
    dn.push(DnType::CommonName, req.cn.as_str());
    p.distinguished_name = dn;
    p.serial_number = Some(random_serial()?);
    p.not_before = rcgen_time(not_before)?;
    p.not_after = rcgen_time(expiry(now, req.validity))?;
    let rsa = key.algorithm.is_none_or(|a| a.is_rsa());
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if rsa {
        p.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    match req.usage {
        Usage::Ca => {
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages.push(KeyUsagePurpose::KeyCertSign);
        }
        Usage::Server => p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth],
        Usage::Client => p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth],
        Usage::ServerClient => {
            p.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ]
        }
    }
    if !req.usage.is_ca() {
        p.is_ca = IsCa::ExplicitNoCa;
        p.use_authority_key_identifier_extension = true;
    }
    for d in &req.alt.dns {
        let name = d
            .clone()
            .try_into()
            .map_err(|e| PkiError::Crypto(format!("invalid DNS name {d:?}: {e}")))?;
        p.subject_alt_names.push(SanType::DnsName(name));
    }
    for ip in &req.alt.ips {
        p.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    Ok(p)
}

/// A self-signed CA certificate valid from `now - 5 min` to `now + validity`.
pub fn self_signed(
    req: &CertRequest,
    key: &PrivateKey,
    now: Timestamp,
) -> Result<Issued, PkiError> {
    let p = params(req, key, now - BACKDATE, now)?;
    let cert = p
        .self_signed(&key.pair)
        .map_err(|e| PkiError::Crypto(format!("cannot self-sign {:?}: {e}", req.cn)))?;
    Ok(issued(cert.der().to_vec()))
}

/// A leaf signed by `ca`, valid from the CA's NotBefore (as upstream) to `now + validity`.
pub fn sign(
    req: &CertRequest,
    key: &PrivateKey,
    ca: &Authority<'_>,
    now: Timestamp,
) -> Result<Issued, PkiError> {
    let ca_info = CertInfo::from_der("CA certificate", ca.cert_der)?;
    check_ca(
        &format!("the CA certificate {:?} (CN)", ca_info.cn),
        &ca_info,
        now.as_second(),
    )?;
    let not_before = Timestamp::from_second(ca_info.not_before).unwrap_or(now - BACKDATE);
    let p = params(req, key, not_before, now)?;
    let issuer = Issuer::from_ca_cert_der(&ca.cert_der.to_vec().into(), &ca.key.pair)
        .map_err(|e| PkiError::Crypto(format!("cannot use the CA certificate to sign: {e}")))?;
    let cert = p
        .signed_by(&key.pair, &issuer)
        .map_err(|e| PkiError::Crypto(format!("cannot sign {:?}: {e}", req.cn)))?;
    Ok(issued(cert.der().to_vec()))
}

/// A PKCS#10 certificate signing request (PEM) for `req`, signed with `key`.
pub fn csr(req: &CertRequest, key: &PrivateKey) -> Result<String, PkiError> {
    let now = Timestamp::now();
    let mut p = params(req, key, now, now)?;
    // A CSR carries no serial and no issuer reference.
    p.serial_number = None;
    p.use_authority_key_identifier_extension = false;
    let csr = p
        .serialize_request(&key.pair)
        .map_err(|e| PkiError::Crypto(format!("cannot build a CSR for {:?}: {e}", req.cn)))?;
    Ok(pem_encode("CERTIFICATE REQUEST", csr.der().to_vec()))
}

fn issued(der: Vec<u8>) -> Issued {
    Issued {
        pem: pem_encode("CERTIFICATE", der.clone()),
        der,
    }
}

/// What kubeadm needs to know about an existing certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// DER.
    pub der: Vec<u8>,
    /// Subject CN.
    pub cn: String,
    /// Subject organizations.
    pub orgs: Vec<String>,
    /// SANs.
    pub alt: AltNames,
    /// A CA (basicConstraints CA:TRUE).
    pub is_ca: bool,
    /// May sign certificates: keyUsage has keyCertSign, or there is no keyUsage extension
    /// (unrestricted, as Go's crypto/x509 and OpenSSL read it; `openssl req -x509` with
    /// Debian's default configuration writes none).
    pub key_cert_sign: bool,
    /// Extended key usages present: (serverAuth, clientAuth).
    pub eku: (bool, bool),
    /// NotBefore, Unix seconds.
    pub not_before: i64,
    /// NotAfter, Unix seconds.
    pub not_after: i64,
    /// DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    /// Serial number, big-endian bytes.
    pub serial: Vec<u8>,
}

impl CertInfo {
    /// Parses the first `CERTIFICATE` block of a PEM file. `file` names it in errors.
    pub fn from_pem(file: &str, text: &str) -> Result<Self, PkiError> {
        let bad = |problem: String| PkiError::BadFile {
            file: file.to_string(),
            problem,
        };
        let blocks = pem::parse_many(text).map_err(|e| bad(format!("not PEM: {e}")))?;
        let block = blocks
            .into_iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or_else(|| bad("holds no CERTIFICATE block".into()))?;
        Self::from_der(file, block.contents())
    }

    /// Parses DER.
    pub fn from_der(file: &str, der: &[u8]) -> Result<Self, PkiError> {
        let (_, x) = X509Certificate::from_der(der).map_err(|e| PkiError::BadFile {
            file: file.to_string(),
            problem: format!("not a valid X.509 certificate: {e}"),
        })?;
        let subject = x.subject();
        let cn = subject
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())
            .unwrap_or_default()
            .to_string();
        let orgs = subject
            .iter_organization()
            .filter_map(|a| a.as_str().ok())
            .map(str::to_string)
            .collect();
        let mut alt = AltNames::default();
        if let Ok(Some(san)) = x.subject_alternative_name() {
            for n in &san.value.general_names {
                match n {
                    GeneralName::DNSName(d) => alt.dns.push(d.to_string()),
                    GeneralName::IPAddress(b) => {
                        if let Ok(a) = <[u8; 4]>::try_from(*b) {
                            alt.ips.push(IpAddr::from(a));
                        } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                            alt.ips.push(IpAddr::from(a));
                        }
                    }
                    _ => {}
                }
            }
        }
        let eku = match x.extended_key_usage() {
            Ok(Some(e)) => (e.value.server_auth, e.value.client_auth),
            _ => (false, false),
        };
        Ok(CertInfo {
            der: der.to_vec(),
            cn,
            orgs,
            alt,
            is_ca: x.is_ca(),
            key_cert_sign: match x.key_usage() {
                Ok(Some(ku)) => ku.value.key_cert_sign(),
                Ok(None) => true,
                Err(_) => false,
            },
            eku,
            not_before: x.validity().not_before.timestamp(),
            not_after: x.validity().not_after.timestamp(),
            spki: x.public_key().raw.to_vec(),
            serial: x.raw_serial().to_vec(),
        })
    }

    /// True when `ca` signed this certificate (signature checked with the CA's public key).
    pub fn signed_by(&self, ca: &CertInfo) -> bool {
        let (Ok((_, me)), Ok((_, issuer))) = (
            X509Certificate::from_der(&self.der),
            X509Certificate::from_der(&ca.der),
        ) else {
            return false;
        };
        me.issuer() == issuer.subject() && me.verify_signature(Some(issuer.public_key())).is_ok()
    }

    /// True when `key` is this certificate's private key.
    pub fn matches_key(&self, key: &PrivateKey) -> bool {
        key.public_spki_der() == self.spki
    }

    /// The request that would reproduce this certificate's subject, names and usages with a
    /// new validity (for `certs renew`).
    pub fn to_request(&self, validity: std::time::Duration) -> CertRequest {
        let usage = match (self.is_ca, self.eku) {
            (true, _) => Usage::Ca,
            (false, (true, true)) => Usage::ServerClient,
            (false, (true, false)) => Usage::Server,
            _ => Usage::Client,
        };
        CertRequest {
            cn: self.cn.clone(),
            orgs: self.orgs.clone(),
            usage,
            alt: self.alt.clone(),
            validity,
        }
    }
}

/// Everything wrong with an existing certificate+key for a request, or `Ok` to reuse them.
pub fn check_existing(
    file: &str,
    cert: &CertInfo,
    key: Option<&PrivateKey>,
    ca: Option<&CertInfo>,
    want: &CertRequest,
) -> Result<(), PkiError> {
    let fail = |problem: String| {
        Err(PkiError::BadFile {
            file: file.to_string(),
            problem,
        })
    };
    if let Some(k) = key
        && !cert.matches_key(k)
    {
        return fail("the private key does not match the certificate".into());
    }
    if let Some(ca) = ca
        && !cert.signed_by(ca)
    {
        return fail(format!(
            "the certificate is not signed by the current CA {:?}",
            ca.cn
        ));
    }
    if want.usage.is_ca() {
        // A CA, generated here or brought by the operator, needs only to be able to sign now:
        // its names and subject are its owner's business, as upstream.
        return check_ca(file, cert, Timestamp::now().as_second());
    }
    let missing = cert.alt.missing_from(&want.alt);
    if !missing.is_empty() {
        return fail(format!(
            "the certificate lacks required subject alternative names: {}",
            missing.join(", ")
        ));
    }
    let now = Timestamp::now().as_second();
    if cert.not_after < now {
        return fail("the certificate has expired".into());
    }
    Ok(())
}

/// The one rule for a CA about to sign (certs, kubeconfigs, `certs renew`, `kubeconfig user`,
/// join's downloaded certificates): a CA (basicConstraints CA:TRUE), allowed to sign
/// certificates (keyCertSign, or no keyUsage at all), and valid at `now` (Unix seconds). `ca`
/// names it in the error (its file, or its CN when the file is not known).
pub fn check_ca(ca: &str, cert: &CertInfo, now: i64) -> Result<(), PkiError> {
    let fail = |problem: String| {
        Err(PkiError::BadCa {
            ca: ca.to_string(),
            problem,
        })
    };
    let dates = || {
        format!(
            "valid from {} to {}",
            utc(cert.not_before),
            utc(cert.not_after)
        )
    };
    if !cert.is_ca {
        return fail("is not a CA (basicConstraints CA:TRUE is missing)".into());
    }
    if !cert.key_cert_sign {
        return fail("may not sign certificates (its keyUsage lacks keyCertSign)".into());
    }
    if now < cert.not_before {
        return fail(format!(
            "is not valid yet: {}, now is {}",
            dates(),
            utc(now)
        ));
    }
    if now > cert.not_after {
        return fail(format!("has expired: {}, now is {}", dates(), utc(now)));
    }
    Ok(())
}

/// Unix seconds as an RFC 3339 UTC time (`2026-12-02T06:27:49Z`).
pub fn utc(t: i64) -> String {
    kubeadm_api::dates::rfc3339(t).unwrap_or_else(|| format!("{t} (Unix seconds)"))
}
