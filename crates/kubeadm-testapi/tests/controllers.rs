//! The emulated controllers: bootstrapsigner, tokencleaner and the kubelet client CSR signer.
#![allow(clippy::unwrap_used)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kubeadm_testapi::auth::UserInfo;
use kubeadm_testapi::controllers::{KUBELET_CLIENT_SIGNER, jws_detached};
use kubeadm_testapi::pki::TestPki;
use kubeadm_testapi::rest::{self, State, handle};
use serde_json::{Value, json};

fn admin() -> UserInfo {
    UserInfo {
        name: "admin".into(),
        groups: vec!["system:masters".into()],
    }
}

fn post(s: &mut State, u: &UserInfo, path: &str, body: Value) -> rest::Response {
    let r = handle(
        s,
        u,
        "POST",
        path,
        "",
        "application/json",
        &serde_json::to_vec(&body).unwrap(),
    );
    rest::reconcile(s);
    r
}

fn token_secret(id: &str, secret: &str, exp: &str) -> Value {
    let b = |v: &str| STANDARD.encode(v);
    json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":format!("bootstrap-token-{id}"),"namespace":"kube-system"},
        "type":"bootstrap.kubernetes.io/token",
        "data":{"token-id":b(id),"token-secret":b(secret),"expiration":b(exp),"usage-bootstrap-signing":b("true"),
            "usage-bootstrap-authentication":b("true"),"auth-extra-groups":b("system:bootstrappers:kubeadm:default-node-token")}})
}

#[test]
fn upstream_jws_vector() {
    let content = "Hello from the other side. I must have called a thousand times.";
    assert_eq!(
        jws_detached(content, "joshua", "my voice is my passcode"),
        "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..VShe2taLd-YTrmWuRkcL_8QTNDHYxQIEBsAYYiIj1_8"
    );
}

#[test]
fn bootstrapsigner_adds_and_removes_signatures() {
    let mut s = State::default();
    rest::seed(&mut s);
    post(
        &mut s,
        &admin(),
        "/api/v1/namespaces/kube-public/configmaps",
        json!({"apiVersion":"v1","kind":"ConfigMap",
        "metadata":{"name":"cluster-info"},"data":{"kubeconfig":"KC"}}),
    );
    post(
        &mut s,
        &admin(),
        "/api/v1/namespaces/kube-system/secrets",
        token_secret("abcdef", "0123456789abcdef", "2999-01-01T00:00:00Z"),
    );
    let ci = |s: &mut State| {
        handle(
            s,
            &admin(),
            "GET",
            "/api/v1/namespaces/kube-public/configmaps/cluster-info",
            "",
            "",
            b"",
        )
        .body
    };
    assert_eq!(
        ci(&mut s)["data"]["jws-kubeconfig-abcdef"],
        jws_detached("KC", "abcdef", "0123456789abcdef")
    );
    // Expired token: the tokencleaner deletes it and the signer drops its key.
    post(
        &mut s,
        &admin(),
        "/api/v1/namespaces/kube-system/secrets",
        token_secret("zzzzzz", "0123456789abcdef", "2001-01-01T00:00:00Z"),
    );
    assert!(ci(&mut s)["data"].get("jws-kubeconfig-zzzzzz").is_none());
    let r = handle(
        &mut s,
        &admin(),
        "GET",
        "/api/v1/namespaces/kube-system/secrets/bootstrap-token-zzzzzz",
        "",
        "",
        b"",
    );
    assert_eq!(r.code, 404);
    handle(
        &mut s,
        &admin(),
        "DELETE",
        "/api/v1/namespaces/kube-system/secrets/bootstrap-token-abcdef",
        "",
        "",
        b"",
    );
    rest::reconcile(&mut s);
    assert!(ci(&mut s)["data"].get("jws-kubeconfig-abcdef").is_none());
    assert_eq!(ci(&mut s)["data"]["kubeconfig"], "KC");
}

fn node_csr(cn: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:nodes");
    p.serialize_request(&key).unwrap().pem().unwrap()
}

#[test]
fn bootstrap_user_csr_is_approved_only_with_binding_and_signed() {
    let pki = TestPki::generate().unwrap();
    let mut s = State {
        ca: pki.server_config().signing_ca,
        ..State::default()
    };
    rest::seed(&mut s);
    let boot = UserInfo {
        name: "system:bootstrap:abcdef".into(),
        groups: vec![
            "system:bootstrappers".into(),
            "system:bootstrappers:kubeadm:default-node-token".into(),
            "system:authenticated".into(),
        ],
    };
    let csr = |name: &str| {
        json!({"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","metadata":{"name":name},
        "spec":{"request":STANDARD.encode(node_csr("system:node:n1")),"signerName":KUBELET_CLIENT_SIGNER,"usages":["digital signature","client auth"]}})
    };
    let path = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
    // Without kubeadm's bindings the bootstrap user cannot even create a CSR.
    assert_eq!(post(&mut s, &boot, path, csr("a")).code, 403);
    let bind = |name: &str, role: &str| {
        json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":name},
        "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":role},
        "subjects":[{"kind":"Group","name":"system:bootstrappers:kubeadm:default-node-token"}]})
    };
    let crb = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings";
    post(
        &mut s,
        &admin(),
        crb,
        bind("kubeadm:kubelet-bootstrap", "system:node-bootstrapper"),
    );
    assert_eq!(post(&mut s, &boot, path, csr("a")).code, 201);
    let got = handle(&mut s, &boot, "GET", &format!("{path}/a"), "", "", b"").body;
    assert!(
        got["status"]["certificate"].is_null(),
        "not approved without the autoapprove binding"
    );
    assert_eq!(got["spec"]["username"], "system:bootstrap:abcdef");
    post(
        &mut s,
        &admin(),
        crb,
        bind(
            "kubeadm:node-autoapprove-bootstrap",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        ),
    );
    let got = handle(&mut s, &boot, "GET", &format!("{path}/a"), "", "", b"").body;
    assert_eq!(got["status"]["conditions"][0]["type"], "Approved");
    let pem = String::from_utf8(
        STANDARD
            .decode(got["status"]["certificate"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let der = pem::parse(pem).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(der.contents()).unwrap();
    assert_eq!(
        cert.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "system:node:n1"
    );
    let ca = pem::parse(&pki.ca_cert_pem).unwrap();
    let (_, ca) = x509_parser::parse_x509_certificate(ca.contents()).unwrap();
    assert!(cert.verify_signature(Some(ca.public_key())).is_ok());
}
