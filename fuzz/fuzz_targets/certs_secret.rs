//! The kubeadm-certs Secret a control-plane join downloads: any Secret JSON (as an API server may
//! serve it) opened with the certificate key, its entries mapped to file names, and raw sealed
//! bytes decrypted with a key taken from the input. Nothing may panic, and no entry may map to a
//! path outside the certificates directory.
#![no_main]

use k8s_openapi::api::core::v1::Secret;
use kubeadm_cluster::certs_secret;
use libfuzzer_sys::fuzz_target;

/// A throwaway certificate key (not the key of any cluster).
const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fuzz_target!(|data: &[u8]| {
    if let Ok(secret) = serde_json::from_slice::<Secret>(data) {
        for name in secret.data.iter().flatten().map(|(k, _)| k) {
            if let Some(file) = certs_secret::entry_file(name) {
                assert!(
                    !file.starts_with('/') && !file.split('/').any(|c| c == ".." || c.is_empty()),
                    "{name:?} maps to {file:?}"
                );
            }
        }
        let _ = certs_secret::open(KEY, &secret);
    }
    // Raw: the first 64 bytes as the hex key (often invalid), the rest as sealed data.
    let (key, sealed) = data.split_at(data.len().min(64));
    if let Ok(key) = std::str::from_utf8(key) {
        let _ = certs_secret::decrypt(key, sealed);
    }
    let _ = certs_secret::decrypt(KEY, data);
});
