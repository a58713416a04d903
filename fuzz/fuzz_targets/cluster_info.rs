//! Token discovery (`kubeadm join`): a cluster-info ConfigMap's data as an untrusted API server
//! may serve it. The input is split into the JWS (first line) and the kubeconfig (the rest);
//! with an empty first line, the kubeconfig is signed with the token instead, so the fuzzer
//! reaches the kubeconfig reader and the CA pins past a valid signature. Nothing may panic, and
//! a JWS that is not the token's signature of the content must never verify.
#![no_main]

use std::collections::BTreeMap;

use kubeadm_api::BootstrapTokenString;
use kubeadm_cluster::discovery::{self, JWS_KEY_PREFIX, KUBECONFIG_KEY, Pins};
use kubeadm_cluster::jws;
use kubeadm_errors::Hint;
use libfuzzer_sys::fuzz_target;

/// A throwaway token (not a credential of any cluster).
const TOKEN: &str = "abcdef.0123456789abcdef";
/// A pin no CA matches: the checks must still run to the end.
const PIN: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(token) = BootstrapTokenString::parse(TOKEN) else {
        return;
    };
    let (given_jws, kubeconfig) = text.split_once('\n').unwrap_or((text, ""));
    let sign_it = given_jws.is_empty();
    let signature = if sign_it {
        jws::sign(kubeconfig, token.id(), token.secret())
    } else {
        given_jws.to_string()
    };
    // A forged signature verifying would be a hole, not a crash: fail loudly.
    if !sign_it && jws::verify(kubeconfig, given_jws, token.id(), token.secret()) {
        assert_eq!(
            given_jws,
            jws::sign(kubeconfig, token.id(), token.secret()),
            "a JWS other than the token's detached signature verified"
        );
    }
    let map = BTreeMap::from([
        (KUBECONFIG_KEY.to_string(), kubeconfig.to_string()),
        (format!("{JWS_KEY_PREFIX}{}", token.id()), signature),
    ]);
    let Ok(kc) = discovery::verified_kubeconfig(&map, &token) else {
        return;
    };
    let info = match discovery::parse_cluster_kubeconfig("cluster-info", kc) {
        Ok(info) => info,
        Err(e) => {
            let _ = e.hint();
            return;
        }
    };
    if let Ok(pins) = Pins::parse(&[PIN.to_string()]) {
        let _ = pins.check(&info.ca_pem);
    }
});
