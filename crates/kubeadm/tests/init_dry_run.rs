//! `kubeadm init --dry-run` under an empty temp --rootfs: every API request of the API phases
//! is printed as upstream prints it (verb, resource, API group, the object), through the same
//! planning code as a real run, and nothing is written.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use assert_cmd::Command;

fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(p.display().to_string());
        if p.is_dir() {
            out.extend(entries(&p));
        }
    }
    out
}

#[test]
fn dry_run_prints_every_api_request_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("kubeadm")
        .unwrap()
        .arg("--rootfs")
        .arg(dir.path())
        .args([
            "init",
            "--dry-run",
            "--apiserver-advertise-address",
            "10.0.0.1",
            "--node-name",
            "cp-1",
            "--kubernetes-version",
            "v1.33.0",
            "--token",
            "abcdef.0123456789abcdef",
            "--upload-certs",
        ])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        // wait-control-plane names what it would wait for.
        "[dryrun] Would wait for the kubelet and the control plane to be healthy: http://127.0.0.1:10248/healthz, https://10.0.0.1:6443/livez",
        // From 1.29 the cluster-admins binding comes first.
        "[dryrun] Would perform action CREATE on resource \"clusterrolebindings\" in API group \"rbac.authorization.k8s.io/v1\"",
        "  name: kubeadm:cluster-admins",
        // upload-config.
        "[dryrun] Would perform action CREATE on resource \"configmaps\" in API group \"core/v1\"",
        "  name: kubeadm-config",
        "  name: kubelet-config",
        // upload-certs, bootstrap-token: Secrets, their secret parts withheld.
        "[dryrun] Would perform action CREATE on resource \"secrets\" in API group \"core/v1\"",
        "  name: kubeadm-certs",
        "  name: bootstrap-token-abcdef",
        "  token-id: YWJjZGVm", // base64 of abcdef, as the API holds it
        "  token-secret: <redacted>",
        // mark-control-plane reads and patches the node.
        "[dryrun] Would perform action GET on resource \"nodes\" in API group \"core/v1\"",
        "[dryrun] Would perform action PATCH on resource \"nodes\" in API group \"core/v1\"",
        "node-role.kubernetes.io/control-plane",
        // cluster-info and the addons.
        "  name: cluster-info",
        "[dryrun] Would perform action CREATE on resource \"deployments\" in API group \"apps/v1\"",
        "[dryrun] Would perform action CREATE on resource \"daemonsets\" in API group \"apps/v1\"",
        "[dryrun] Finished dry-running successfully",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    // The token's secret half is not in any printed object (only in the join command).
    let objects: String = stdout
        .lines()
        .filter(|l| l.starts_with('\t'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!objects.contains("MDEyMzQ1Njc4OWFiY2RlZg"), "{objects}");
    assert_eq!(
        entries(dir.path()),
        Vec::<String>::new(),
        "dry run wrote files"
    );
}
