//! The kubeadm-certs Secret: control-plane CA keys sealed with AES-256-GCM under the
//! certificate key (`nonce(12) || ciphertext+tag`), owned by a short-lived bootstrap token.

use std::collections::BTreeMap;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use crate::{ClusterError, meta};

/// The Secret's name (kube-system).
pub const NAME: &str = "kubeadm-certs";

fn key(hex_key: &str) -> Result<LessSafeKey, ClusterError> {
    kubeadm_api::token::validate_certificate_key(hex_key).map_err(ClusterError::CertificateKey)?;
    let raw = hex::decode(hex_key).map_err(|e| ClusterError::CertificateKey(e.to_string()))?;
    let unbound = UnboundKey::new(&AES_256_GCM, &raw)
        .map_err(|_| ClusterError::CertificateKey("not a 32-byte AES-256 key".into()))?;
    Ok(LessSafeKey::new(unbound))
}

/// Seals `data` with a fresh random nonce.
pub fn encrypt(hex_key: &str, data: &[u8]) -> Result<Vec<u8>, ClusterError> {
    let k = key(hex_key)?;
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce)
        .map_err(|_| ClusterError::Crypto("cannot read random bytes for the nonce".into()))?;
    let mut buf = data.to_vec();
    k.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
        .map_err(|_| ClusterError::Crypto("encryption failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(out)
}

/// Opens what [`encrypt`] sealed.
pub fn decrypt(hex_key: &str, sealed: &[u8]) -> Result<Vec<u8>, ClusterError> {
    let k = key(hex_key)?;
    if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
        return Err(ClusterError::Crypto("sealed data is too short".into()));
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| ClusterError::Crypto("bad nonce".into()))?;
    let mut buf = ct.to_vec();
    let plain = k
        .open_in_place(nonce, Aad::empty(), &mut buf)
        .map_err(|_| {
            ClusterError::Crypto(
                "cannot decrypt: the certificate key does not match the one used for upload".into(),
            )
        })?;
    Ok(plain.to_vec())
}

/// The Secret with every file sealed, owned by the bootstrap-token Secret `owner_name`/`owner_uid`.
pub fn secret(
    hex_key: &str,
    files: &BTreeMap<String, Vec<u8>>,
    owner_name: &str,
    owner_uid: &str,
) -> Result<Secret, ClusterError> {
    let mut data = BTreeMap::new();
    for (name, bytes) in files {
        data.insert(name.clone(), ByteString(encrypt(hex_key, bytes)?));
    }
    let mut m = meta(NAME, Some("kube-system"));
    m.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "Secret".into(),
        name: owner_name.into(),
        uid: owner_uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    Ok(Secret {
        metadata: m,
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Default::default()
    })
}

/// The certificate files every control-plane node shares (relative to the certificates
/// directory): what upload-certs uploads and what a control-plane join must have, by download or
/// by hand. With local etcd the etcd CA is shared too.
pub fn shared_files(local_etcd: bool) -> Vec<&'static str> {
    let mut names = vec![
        "ca.crt",
        "ca.key",
        "sa.key",
        "sa.pub",
        "front-proxy-ca.crt",
        "front-proxy-ca.key",
    ];
    if local_etcd {
        names.extend(["etcd/ca.crt", "etcd/ca.key"]);
    }
    names
}

/// The file (relative to the certificates directory) a kubeadm-certs entry of a shared file
/// holds: `etcd-ca.key` is `etcd/ca.key`. Only the names [`shared_files`] uploads are known: the
/// Secret comes from the cluster, and a name such as `etcd-/etc/passwd` or `../x` must never
/// become a path to write.
pub fn entry_file(name: &str) -> Option<&'static str> {
    shared_files(true)
        .into_iter()
        .find(|f| f.replace('/', "-") == name)
}

/// Opens every entry of a kubeadm-certs Secret.
pub fn open(hex_key: &str, s: &Secret) -> Result<BTreeMap<String, Vec<u8>>, ClusterError> {
    let mut out = BTreeMap::new();
    for (k, v) in s.data.iter().flatten() {
        out.insert(k.clone(), decrypt(hex_key, &v.0)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn only_uploaded_names_map_to_files() {
        for f in shared_files(true) {
            assert_eq!(entry_file(&f.replace('/', "-")), Some(f));
        }
        for bad in [
            "etcd-/etc/passwd",
            "etcd-../../x",
            "../x",
            "etcd-",
            "",
            "apiserver.key",
        ] {
            assert_eq!(entry_file(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trip_and_layout() {
        let sealed = encrypt(KEY, b"secret key bytes").unwrap();
        assert_eq!(sealed.len(), 12 + 16 + 16);
        assert_eq!(decrypt(KEY, &sealed).unwrap(), b"secret key bytes");
        // Fresh nonce each time.
        assert_ne!(encrypt(KEY, b"x").unwrap(), encrypt(KEY, b"x").unwrap());
    }

    #[test]
    fn wrong_key_tamper_and_bad_key() {
        let sealed = encrypt(KEY, b"data").unwrap();
        let other = KEY.replace('0', "1");
        assert!(decrypt(&other, &sealed).is_err());
        let mut t = sealed.clone();
        t[20] ^= 1;
        assert!(decrypt(KEY, &t).is_err());
        assert!(matches!(
            encrypt("abcd", b"x"),
            Err(ClusterError::CertificateKey(_))
        ));
        assert!(decrypt(KEY, &sealed[..10]).is_err());
    }

    #[test]
    fn interop_with_manual_aes_gcm() {
        // Decrypt with an independently constructed opening: nonce prefix, tag suffix.
        let sealed = encrypt(KEY, b"interop").unwrap();
        let raw = hex::decode(KEY).unwrap();
        let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &raw).unwrap());
        let mut buf = sealed[12..].to_vec();
        let n = Nonce::try_assume_unique_for_key(&sealed[..12]).unwrap();
        assert_eq!(
            k.open_in_place(n, Aad::empty(), &mut buf).unwrap(),
            b"interop"
        );
    }

    #[test]
    fn secret_is_owned_and_opens() {
        let mut files = BTreeMap::new();
        files.insert("ca.key".to_string(), b"KEY".to_vec());
        let s = secret(KEY, &files, "bootstrap-token-abcdef", "uid-1").unwrap();
        let owner = &s.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.name, "bootstrap-token-abcdef");
        assert_eq!(owner.controller, Some(true));
        assert_eq!(open(KEY, &s).unwrap()["ca.key"], b"KEY");
    }
}
