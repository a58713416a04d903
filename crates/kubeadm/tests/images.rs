//! `config images list` prints what upstream kubeadm of the same minor (its newest patch)
//! prints. The expected lists were taken from the real kubeadm binaries' output (see
//! `crates/kubeadm-api/src/version.rs` for the source).

use assert_cmd::Command;

fn list(args: &[&str]) -> Vec<String> {
    let out = Command::cargo_bin("kubeadm")
        .unwrap()
        .args(["config", "images", "list"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// What `kubeadm config images list` of upstream v1.22.17 and v1.23.17 prints (both moved to
/// registry.k8s.io in their last patches, kubernetes/kubernetes#113388 and #113393).
#[test]
fn v1_22_and_v1_23() {
    for (v, pause, coredns) in [("v1.22.17", "3.5", "v1.8.4"), ("v1.23.17", "3.6", "v1.8.6")] {
        let want: Vec<String> = [
            format!("registry.k8s.io/kube-apiserver:{v}"),
            format!("registry.k8s.io/kube-controller-manager:{v}"),
            format!("registry.k8s.io/kube-scheduler:{v}"),
            format!("registry.k8s.io/kube-proxy:{v}"),
            format!("registry.k8s.io/pause:{pause}"),
            "registry.k8s.io/etcd:3.5.6-0".to_string(),
            format!("registry.k8s.io/coredns/coredns:{coredns}"),
        ]
        .into();
        assert_eq!(list(&["--kubernetes-version", v]), want, "{v}");
    }
}

#[test]
fn v1_24_0_uses_the_old_order() {
    assert_eq!(
        list(&["--kubernetes-version", "v1.24.0"]),
        [
            "registry.k8s.io/kube-apiserver:v1.24.0",
            "registry.k8s.io/kube-controller-manager:v1.24.0",
            "registry.k8s.io/kube-scheduler:v1.24.0",
            "registry.k8s.io/kube-proxy:v1.24.0",
            "registry.k8s.io/pause:3.7",
            "registry.k8s.io/etcd:3.5.6-0",
            "registry.k8s.io/coredns/coredns:v1.8.6",
        ]
    );
}

#[test]
fn v1_29() {
    assert_eq!(
        list(&["--kubernetes-version", "v1.29.15"]),
        [
            "registry.k8s.io/kube-apiserver:v1.29.15",
            "registry.k8s.io/kube-controller-manager:v1.29.15",
            "registry.k8s.io/kube-scheduler:v1.29.15",
            "registry.k8s.io/kube-proxy:v1.29.15",
            "registry.k8s.io/coredns/coredns:v1.11.1",
            "registry.k8s.io/pause:3.9",
            "registry.k8s.io/etcd:3.5.16-0",
        ]
    );
}

#[test]
fn v1_33() {
    assert_eq!(
        list(&["--kubernetes-version", "1.33.13"]),
        [
            "registry.k8s.io/kube-apiserver:v1.33.13",
            "registry.k8s.io/kube-controller-manager:v1.33.13",
            "registry.k8s.io/kube-scheduler:v1.33.13",
            "registry.k8s.io/kube-proxy:v1.33.13",
            "registry.k8s.io/coredns/coredns:v1.12.0",
            "registry.k8s.io/pause:3.10",
            "registry.k8s.io/etcd:3.5.24-0",
        ]
    );
}

const V1_37: [&str; 7] = [
    "registry.k8s.io/kube-apiserver:v1.37.1",
    "registry.k8s.io/kube-controller-manager:v1.37.1",
    "registry.k8s.io/kube-scheduler:v1.37.1",
    "registry.k8s.io/kube-proxy:v1.37.1",
    "registry.k8s.io/coredns/coredns:v1.14.6",
    "registry.k8s.io/pause:3.10.2",
    "registry.k8s.io/etcd:3.7.0-0",
];

#[test]
fn v1_37_and_the_default() {
    assert_eq!(list(&["--kubernetes-version", "v1.37.1"]), V1_37);
    assert_eq!(list(&[]), V1_37, "the default is the newest release");
    assert_eq!(list(&["--kubernetes-version", "stable-1"]), V1_37);
}

#[test]
fn custom_repository_flattens_the_coredns_path() {
    assert_eq!(
        list(&[
            "--kubernetes-version",
            "v1.33.13",
            "--image-repository",
            "my.registry.io/k8s"
        ]),
        [
            "my.registry.io/k8s/kube-apiserver:v1.33.13",
            "my.registry.io/k8s/kube-controller-manager:v1.33.13",
            "my.registry.io/k8s/kube-scheduler:v1.33.13",
            "my.registry.io/k8s/kube-proxy:v1.33.13",
            "my.registry.io/k8s/coredns:v1.12.0",
            "my.registry.io/k8s/pause:3.10",
            "my.registry.io/k8s/etcd:3.5.24-0",
        ]
    );
}

#[test]
fn config_overrides_and_disabled_addons() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.31.2\nimageRepository: mirror.local\ndns:\n  imageRepository: dns.local/team\n  imageTag: v9.9.9\netcd:\n  local:\n    imageRepository: etcd.local\n    imageTag: 3.5.99-0\n",
    )
    .unwrap();
    assert_eq!(
        list(&["--config", cfg.to_str().unwrap()]),
        [
            "mirror.local/kube-apiserver:v1.31.2",
            "mirror.local/kube-controller-manager:v1.31.2",
            "mirror.local/kube-scheduler:v1.31.2",
            "mirror.local/kube-proxy:v1.31.2",
            "dns.local/team/coredns:v9.9.9",
            "mirror.local/pause:3.10",
            "etcd.local/etcd:3.5.99-0",
        ]
    );
    std::fs::write(
        &cfg,
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.31.2\ndns:\n  disabled: true\nproxy:\n  disabled: true\netcd:\n  external:\n    endpoints: [https://10.0.0.1:2379]\n    caFile: /ca\n    certFile: /c\n    keyFile: /k\n",
    )
    .unwrap();
    assert_eq!(
        list(&["--config", cfg.to_str().unwrap()]),
        [
            "registry.k8s.io/kube-apiserver:v1.31.2",
            "registry.k8s.io/kube-controller-manager:v1.31.2",
            "registry.k8s.io/kube-scheduler:v1.31.2",
            "registry.k8s.io/pause:3.10",
        ]
    );
}

#[test]
fn json_output() {
    let out = Command::cargo_bin("kubeadm")
        .unwrap()
        .args([
            "config",
            "images",
            "list",
            "-o",
            "json",
            "--kubernetes-version",
            "v1.37.1",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "Images");
    assert_eq!(v["apiVersion"], "output.kubeadm.k8s.io/v1alpha3");
    assert_eq!(v["images"].as_array().unwrap().len(), 7);
}

#[test]
fn unsupported_versions_are_refused() {
    let out = Command::cargo_bin("kubeadm")
        .unwrap()
        .args([
            "config",
            "images",
            "list",
            "--kubernetes-version",
            "v1.21.14",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("v1.22 through v1.37"));
}
