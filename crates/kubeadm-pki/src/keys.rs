//! Private keys: generation (RSA-2048/3072/4096, ECDSA-P256/P384, several in parallel), the
//! file formats upstream writes (PKCS#1 `RSA PRIVATE KEY`, SEC1 `EC PRIVATE KEY`, PKIX
//! `PUBLIC KEY`), and loading any of PKCS#1, SEC1 or PKCS#8.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair,
};
use rcgen::{KeyPair, PublicKeyData, RsaKeySize};

use crate::PkiError;

/// A v1beta4 `encryptionAlgorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// RSA, 2048 bits (the default).
    Rsa2048,
    /// RSA, 3072 bits.
    Rsa3072,
    /// RSA, 4096 bits.
    Rsa4096,
    /// ECDSA on P-256.
    EcdsaP256,
    /// ECDSA on P-384.
    EcdsaP384,
}

impl KeyAlgorithm {
    /// Parses the configuration value (`RSA-2048`, …); empty means the default.
    pub fn parse(s: &str) -> Result<Self, PkiError> {
        Ok(match s {
            "" | "RSA-2048" => KeyAlgorithm::Rsa2048,
            "RSA-3072" => KeyAlgorithm::Rsa3072,
            "RSA-4096" => KeyAlgorithm::Rsa4096,
            "ECDSA-P256" => KeyAlgorithm::EcdsaP256,
            "ECDSA-P384" => KeyAlgorithm::EcdsaP384,
            other => return Err(PkiError::Algorithm(other.to_string())),
        })
    }

    /// The key algorithm of a cluster, as upstream's `EncryptionAlgorithmType()`: the
    /// deprecated `PublicKeysECDSA` feature gate, when set either way, wins over
    /// `encryptionAlgorithm` (true: ECDSA-P256, false: RSA-2048).
    pub fn for_cluster(
        cluster: &kubeadm_api::v1beta4::ClusterConfiguration,
    ) -> Result<Self, PkiError> {
        match cluster.feature_gates.get("PublicKeysECDSA") {
            Some(true) => Ok(KeyAlgorithm::EcdsaP256),
            Some(false) => Ok(KeyAlgorithm::Rsa2048),
            None => Self::parse(&cluster.encryption_algorithm),
        }
    }

    /// The configuration spelling.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa2048 => "RSA-2048",
            KeyAlgorithm::Rsa3072 => "RSA-3072",
            KeyAlgorithm::Rsa4096 => "RSA-4096",
            KeyAlgorithm::EcdsaP256 => "ECDSA-P256",
            KeyAlgorithm::EcdsaP384 => "ECDSA-P384",
        }
    }

    /// True for the RSA sizes.
    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096
        )
    }
}

/// A private key with its file encoding.
pub struct PrivateKey {
    /// The key as rcgen signs with it.
    pub pair: KeyPair,
    /// The PEM written to disk (PKCS#1, SEC1, or the file's own form when loaded).
    pub pem: String,
    /// Algorithm, when known (`None` for a loaded key of another kind).
    pub algorithm: Option<KeyAlgorithm>,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({:?}, secret elided)", self.algorithm)
    }
}

impl PrivateKey {
    /// Generates a new key.
    pub fn generate(alg: KeyAlgorithm) -> Result<Self, PkiError> {
        let gen_err = |e: rcgen::Error| {
            PkiError::Crypto(format!("cannot generate a {} key: {e}", alg.name()))
        };
        let pair = match alg {
            KeyAlgorithm::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048)
            }
            KeyAlgorithm::Rsa3072 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_3072)
            }
            KeyAlgorithm::Rsa4096 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_4096)
            }
            KeyAlgorithm::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyAlgorithm::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        }
        .map_err(gen_err)?;
        let pkcs8 = pair.serialize_der();
        let (label, der) = if alg.is_rsa() {
            ("RSA PRIVATE KEY", pkcs1_from_pkcs8(&pkcs8)?)
        } else {
            let signing = if alg == KeyAlgorithm::EcdsaP256 {
                &ECDSA_P256_SHA256_ASN1_SIGNING
            } else {
                &ECDSA_P384_SHA384_ASN1_SIGNING
            };
            let ec = EcdsaKeyPair::from_pkcs8(signing, &pkcs8)
                .map_err(|e| PkiError::Crypto(format!("cannot re-read a generated EC key: {e}")))?;
            let sec1 = ec
                .private_key()
                .as_der()
                .map_err(|e| PkiError::Crypto(format!("cannot encode an EC key: {e}")))?;
            ("EC PRIVATE KEY", sec1.as_ref().to_vec())
        };
        Ok(PrivateKey {
            pair,
            pem: pem_encode(label, der),
            algorithm: Some(alg),
        })
    }

    /// Generates `n` keys using every core (see [`crate::supply::KeySupply`]).
    pub fn generate_many(alg: KeyAlgorithm, n: usize) -> Result<Vec<Self>, PkiError> {
        let supply = crate::supply::KeySupply::start(alg, n);
        (0..n).map(|_| supply.take()).collect()
    }

    /// Loads a PEM private key (PKCS#1, SEC1 or PKCS#8). `file` names it in errors.
    pub fn from_pem(file: &str, text: &str) -> Result<Self, PkiError> {
        let pair = KeyPair::from_pem(text).map_err(|e| PkiError::BadFile {
            file: file.to_string(),
            problem: format!("not a usable private key: {e}"),
        })?;
        let algorithm = algorithm_of(&pair);
        Ok(PrivateKey {
            pair,
            pem: text.to_string(),
            algorithm,
        })
    }

    /// The DER SubjectPublicKeyInfo of the key.
    pub fn public_spki_der(&self) -> Vec<u8> {
        self.pair.subject_public_key_info()
    }

    /// The PKIX `PUBLIC KEY` PEM (as `sa.pub`).
    pub fn public_pem(&self) -> String {
        pem_encode("PUBLIC KEY", self.public_spki_der())
    }

    /// What the key is, for messages ("RSA-2048 private key").
    pub fn describe(&self) -> String {
        match self.algorithm {
            Some(a) => format!("{} private key", a.name()),
            None => "private key".to_string(),
        }
    }
}

fn algorithm_of(pair: &KeyPair) -> Option<KeyAlgorithm> {
    let alg = pair.algorithm();
    if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        return Some(KeyAlgorithm::EcdsaP256);
    }
    if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        return Some(KeyAlgorithm::EcdsaP384);
    }
    // RSA: the modulus size from the SPKI length (PKCS#1 public key inside).
    let bits = rsa_modulus_bits(&pair.subject_public_key_info())?;
    match bits {
        2048 => Some(KeyAlgorithm::Rsa2048),
        3072 => Some(KeyAlgorithm::Rsa3072),
        4096 => Some(KeyAlgorithm::Rsa4096),
        _ => None,
    }
}

fn rsa_modulus_bits(spki: &[u8]) -> Option<usize> {
    use x509_parser::prelude::FromDer;
    let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki).ok()?;
    match info.parsed().ok()? {
        x509_parser::public_key::PublicKey::RSA(rsa) => Some(rsa.key_size()),
        _ => None,
    }
}

/// PEM with 64-column lines and `\n` endings, as Go writes it.
pub fn pem_encode(label: &str, der: Vec<u8>) -> String {
    pem::encode_config(
        &pem::Pem::new(label, der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// Reads one DER TLV at the start of `buf`: (tag, content, rest).
fn der_tlv(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = buf.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        rest = &rest[n..];
        len
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// PKCS#8 PrivateKeyInfo → the PKCS#1 RSAPrivateKey inside its OCTET STRING.
fn pkcs1_from_pkcs8(pkcs8: &[u8]) -> Result<Vec<u8>, PkiError> {
    let bad = || PkiError::Crypto("unexpected PKCS#8 layout for an RSA key".into());
    let (tag, body, _) = der_tlv(pkcs8).ok_or_else(bad)?;
    if tag != 0x30 {
        return Err(bad());
    }
    let (_, _version, rest) = der_tlv(body).ok_or_else(bad)?;
    let (_, _alg, rest) = der_tlv(rest).ok_or_else(bad)?;
    let (tag, key, _) = der_tlv(rest).ok_or_else(bad)?;
    if tag != 0x04 {
        return Err(bad());
    }
    Ok(key.to_vec())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn writes_upstream_key_formats_and_reads_them_back() {
        for (alg, label) in [
            (KeyAlgorithm::Rsa2048, "RSA PRIVATE KEY"),
            (KeyAlgorithm::EcdsaP256, "EC PRIVATE KEY"),
            (KeyAlgorithm::EcdsaP384, "EC PRIVATE KEY"),
        ] {
            let k = PrivateKey::generate(alg).unwrap();
            assert!(
                k.pem.starts_with(&format!("-----BEGIN {label}-----\n")),
                "{}",
                k.pem
            );
            let back = PrivateKey::from_pem("k", &k.pem).unwrap();
            assert_eq!(back.algorithm, Some(alg));
            assert_eq!(back.public_spki_der(), k.public_spki_der());
            assert!(k.public_pem().starts_with("-----BEGIN PUBLIC KEY-----\n"));
        }
    }

    #[test]
    fn generates_many_distinct_keys() {
        let keys = PrivateKey::generate_many(KeyAlgorithm::EcdsaP256, 5).unwrap();
        assert_eq!(keys.len(), 5);
        let mut spkis: Vec<_> = keys.iter().map(|k| k.public_spki_der()).collect();
        spkis.dedup();
        assert_eq!(spkis.len(), 5);
    }

    #[test]
    fn the_ecdsa_feature_gate_wins_either_way() {
        let mut c = kubeadm_api::v1beta4::ClusterConfiguration {
            encryption_algorithm: "RSA-4096".into(),
            ..Default::default()
        };
        assert_eq!(
            KeyAlgorithm::for_cluster(&c).unwrap(),
            KeyAlgorithm::Rsa4096
        );
        c.feature_gates.insert("PublicKeysECDSA".into(), true);
        assert_eq!(
            KeyAlgorithm::for_cluster(&c).unwrap(),
            KeyAlgorithm::EcdsaP256
        );
        c.encryption_algorithm = "ECDSA-P384".into();
        c.feature_gates.insert("PublicKeysECDSA".into(), false);
        assert_eq!(
            KeyAlgorithm::for_cluster(&c).unwrap(),
            KeyAlgorithm::Rsa2048
        );
    }

    #[test]
    fn rejects_unknown_algorithms() {
        assert!(KeyAlgorithm::parse("DSA").is_err());
        assert_eq!(KeyAlgorithm::parse("").unwrap(), KeyAlgorithm::Rsa2048);
    }
}
