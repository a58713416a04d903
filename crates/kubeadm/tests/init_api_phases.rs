//! `kubeadm init phase <API phase>` under a temp --rootfs against the in-repo test API server
//! (admin.conf and ca.crt are written by the test, standing in for the certs/kubeconfig phases).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use assert_cmd::Command;
use kubeadm_testapi::TestApiServer;
use kubeadm_testapi::pki::TestPki;

fn kubeadm(root: &std::path::Path, args: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("kubeadm")
        .unwrap()
        .arg("--rootfs")
        .arg(root)
        .args(args)
        .timeout(Duration::from_secs(60))
        .assert()
}

#[test]
fn api_phases_end_to_end_and_rerun_converges() {
    let pki = TestPki::generate().unwrap();
    let server = TestApiServer::start(pki.server_config()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("etc/kubernetes/pki")).unwrap();
    std::fs::write(
        root.join("etc/kubernetes/admin.conf"),
        pki.kubeconfig(&server.url(), "kubernetes-admin", &["system:masters"])
            .unwrap(),
    )
    .unwrap();
    std::fs::write(root.join("etc/kubernetes/pki/ca.crt"), &pki.ca_cert_pem).unwrap();
    server.register_node("cp-1").unwrap();
    let common = [
        "--apiserver-advertise-address",
        "127.0.0.1",
        "--node-name",
        "cp-1",
        "--token",
        "abcdef.0123456789abcdef",
    ];
    // wait-control-plane has its own tests (wait_control_plane.rs): it needs the kubelet.
    let phases: [&[&str]; 4] = [
        &["init", "phase", "upload-config", "all"],
        &["init", "phase", "mark-control-plane"],
        &["init", "phase", "bootstrap-token"],
        &["init", "phase", "addon", "all"],
    ];
    let run_all = || {
        for p in phases {
            let mut args = p.to_vec();
            args.extend(common);
            let a = kubeadm(root, &args);
            let out = a.get_output();
            assert!(
                out.status.success(),
                "{p:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    run_all();
    for (g, r, ns, n) in common::init_objects(kubeadm_api::version::MAX_MINOR) {
        assert!(server.get(g, r, ns, &n).is_some(), "missing {r} {ns}/{n}");
    }
    let node = server.get("", "nodes", "", "cp-1").unwrap();
    assert_eq!(
        node["spec"]["taints"][0]["key"],
        "node-role.kubernetes.io/control-plane"
    );
    let ci = server
        .get("", "configmaps", "kube-public", "cluster-info")
        .unwrap();
    let kc = ci["data"]["kubeconfig"].as_str().unwrap();
    assert!(kubeadm_cluster::jws::verify(
        kc,
        ci["data"]["jws-kubeconfig-abcdef"].as_str().unwrap(),
        "abcdef",
        "0123456789abcdef"
    ));

    // show-join-command prints the worker join command with the CA hash.
    let mut args = vec!["init", "phase", "show-join-command"];
    args.extend(common);
    let a = kubeadm(root, &args).success();
    let out = String::from_utf8_lossy(&a.get_output().stdout).to_string();
    let port = 6443;
    assert!(
        out.contains(&format!(
            "kubeadm join 127.0.0.1:{port} --token abcdef.0123456789abcdef"
        )),
        "{out}"
    );
    assert!(
        out.contains("--discovery-token-ca-cert-hash sha256:"),
        "{out}"
    );

    // Re-running changes nothing but the token's refreshed expiry.
    let snapshot = |s: &TestApiServer| {
        let mut all = Vec::new();
        for r in ["configmaps", "services", "nodes", "serviceaccounts"] {
            all.extend(s.list("", r));
        }
        for r in [
            "roles",
            "rolebindings",
            "clusterroles",
            "clusterrolebindings",
        ] {
            all.extend(s.list("rbac.authorization.k8s.io", r));
        }
        all.extend(s.list("apps", "deployments"));
        all.extend(s.list("apps", "daemonsets"));
        all
    };
    let before = snapshot(&server);
    run_all();
    assert_eq!(
        snapshot(&server),
        before,
        "a second run changed the cluster"
    );

    // --dry-run talks to no cluster: it prints the requests it would make.
    let n = server.requests().len();
    let mut args = vec!["init", "phase", "bootstrap-token", "--dry-run"];
    args.extend(common);
    let a = kubeadm(root, &args).success();
    let out = String::from_utf8_lossy(&a.get_output().stdout).to_string();
    assert!(
        out.contains(
            "[dryrun] Would perform action CREATE on resource \"secrets\" in API group \"core/v1\""
        ),
        "{out}"
    );
    assert!(out.contains("  name: bootstrap-token-abcdef"), "{out}");
    assert_eq!(server.requests().len(), n);

    // A certificate key of the wrong length fails before any API call.
    let n = server.requests().len();
    let mut args = vec![
        "init",
        "phase",
        "upload-certs",
        "--upload-certs",
        "--certificate-key",
        "abcd",
    ];
    args.extend(common);
    let a = kubeadm(root, &args).failure();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(
        err.contains("certificate key must be 64 hexadecimal"),
        "{err}"
    );
    assert_eq!(server.requests().len(), n, "requests were made");

    // Conflicts on update are retried: a changed configuration is uploaded although the
    // server refuses the first two writes with 409.
    server.inject_conflicts(2);
    let mut args = vec![
        "init",
        "phase",
        "upload-config",
        "kubeadm",
        "--service-dns-domain",
        "example.test",
    ];
    args.extend(common);
    kubeadm(root, &args).success();
    assert_eq!(server.state().conflicts_to_inject, 0);
    let cm = server
        .get("", "configmaps", "kube-system", "kubeadm-config")
        .unwrap();
    assert!(
        cm["data"]["ClusterConfiguration"]
            .as_str()
            .unwrap()
            .contains("dnsDomain: example.test"),
        "{cm}"
    );
    let conflicts = server
        .requests()
        .iter()
        .filter(|r| r.status == 409 && r.method == "PUT")
        .count();
    assert_eq!(conflicts, 2);
}
