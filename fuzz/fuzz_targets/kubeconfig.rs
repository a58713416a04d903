//! kubeconfig files (`--kubeconfig`, admin.conf, kubelet.conf read back by phases and `certs
//! check-expiration`): any text through the parser, then the embedded CA and client
//! certificate through the certificate reader. Nothing may panic.
#![no_main]

use kubeadm_pki::{CertInfo, PrivateKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(kc) = kubeadm_pki::kubeconfig::parse("fuzz.conf", text) else {
        return;
    };
    if let Ok(ca) = CertInfo::from_pem("ca", &kc.ca_pem) {
        let _ = kubeadm_pki::ca_cert_hash(&ca);
    }
    let _ = CertInfo::from_pem("client", &kc.client_cert_pem);
    let _ = PrivateKey::from_pem("client key", &kc.client_key_pem);
});
