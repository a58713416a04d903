//! The test API server as seen by a real client: kubectl (on PATH).
#![allow(clippy::unwrap_used)]

use std::process::Command;

use kubeadm_testapi::TestApiServer;
use kubeadm_testapi::pki::TestPki;

fn kubectl_available() -> bool {
    let ok = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("kubectl is not on PATH (required in CI)");
        }
        eprintln!("skipping: kubectl is not on PATH");
    }
    ok
}

fn kubectl(kc: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kc)
        .arg("--request-timeout=20s")
        .args(args)
        .env("HOME", kc.parent().unwrap())
        .output()
        .unwrap()
}

#[test]
fn kubectl_creates_reads_and_is_denied() {
    if !kubectl_available() {
        return;
    }
    let pki = TestPki::generate().unwrap();
    let server = TestApiServer::start(pki.server_config()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let admin = dir.path().join("admin.conf");
    std::fs::write(
        &admin,
        pki.kubeconfig(&server.url(), "kubernetes-admin", &["system:masters"])
            .unwrap(),
    )
    .unwrap();
    // kubectl sends protobuf for typed creates, which the test server refuses (415, JSON only);
    // `create --raw` sends our JSON body as is.
    let body = dir.path().join("cm.json");
    std::fs::write(&body, r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cluster-info"},"data":{"kubeconfig":"KC"}}"#).unwrap();
    let out = kubectl(
        &admin,
        &[
            "create",
            "--raw",
            "/api/v1/namespaces/kube-public/configmaps",
            "-f",
            body.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kubectl(
        &admin,
        &[
            "-n",
            "kube-public",
            "get",
            "configmap",
            "cluster-info",
            "-o",
            "jsonpath={.data.kubeconfig}",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "KC");
    let out = kubectl(&admin, &["label", "node", "missing", "a=b"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));

    // A user without RBAC is refused with the apiserver's wording.
    let nobody = dir.path().join("nobody.conf");
    std::fs::write(
        &nobody,
        pki.kubeconfig(&server.url(), "nobody", &[]).unwrap(),
    )
    .unwrap();
    let out = kubectl(&nobody, &["-n", "kube-system", "get", "secrets"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("forbidden") && err.contains("User \\\"nobody\\\"")
            || err.contains("User \"nobody\""),
        "{err}"
    );
}
