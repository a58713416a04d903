//! Configuration files (`--config`): any text through the strict decoder of every document kind
//! (kubeadm.k8s.io v1beta3 and v1beta4, KubeletConfiguration, KubeProxyConfiguration), then
//! defaulting, validation and re-encoding of what decoded, and the error's message and hint.
//! Nothing may panic; an error is the expected answer to most inputs.
#![no_main]

use kubeadm_api::{decode, defaults, encode, validate};
use kubeadm_errors::Hint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The CLI refuses non-UTF-8 files before decoding; the decoder sees text only.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let docs = match decode::decode("fuzz.yaml", text) {
        Ok(d) => d,
        Err(e) => {
            let _ = e.to_string();
            let _ = e.hint();
            return;
        }
    };
    if let Some(mut c) = docs.cluster {
        defaults::cluster(&mut c);
        let _ = validate::cluster(&c);
        let _ = encode::to_yaml(&c);
    }
    if let Some(mut c) = docs.init {
        defaults::init(&mut c, true);
        let _ = validate::init(&c);
        let _ = encode::to_yaml(&c);
    }
    if let Some(mut c) = docs.join {
        defaults::join(&mut c);
        let _ = validate::join(&c);
        let _ = encode::to_yaml(&c);
    }
    if let Some(mut c) = docs.reset {
        defaults::reset(&mut c);
        let _ = validate::reset(&c);
    }
    if let Some(mut c) = docs.upgrade {
        defaults::upgrade(&mut c);
        let _ = validate::upgrade(&c);
    }
    for v in [docs.kubelet, docs.kube_proxy].into_iter().flatten() {
        let _ = encode::to_yaml_documents(&[v]);
    }
});
