//! `kubeadm certs renew --auto` on a PKI made with one-day certificates, `certs renew
//! schedule` and `etcd snapshot schedule` units checked by `systemd-analyze verify`, and the
//! dry runs of both.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command as Std;

use assert_cmd::Command;
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;
use support::{peer, tree};

mod support;

fn kubeadm(root: &Path) -> Command {
    let mut c = Command::cargo_bin("kubeadm").unwrap();
    c.arg("--rootfs").arg(root);
    c
}

/// True when `name` is on PATH (a failure under CI otherwise, a loud skip here).
fn peer_found(name: &str) -> bool {
    peer(name, None).is_some()
}

const CONFIG: &str = "apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 127.0.0.1
nodeRegistration:
  name: cp-1
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.33.0
certificateValidityPeriod: 24h0m0s
";

const CAS: &[&str] = &["ca", "front-proxy-ca", "etcd/ca"];
const LEAVES: &[&str] = &[
    "apiserver",
    "apiserver-kubelet-client",
    "apiserver-etcd-client",
    "front-proxy-client",
    "etcd/server",
    "etcd/peer",
    "etcd/healthcheck-client",
];
const KUBECONFIGS: &[&str] = &[
    "admin.conf",
    "super-admin.conf",
    "controller-manager.conf",
    "scheduler.conf",
];

/// File contents under `root` (directories and times left out: renewals rewrite files).
fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    tree(root)
        .into_iter()
        .filter(|(p, _)| p.is_file())
        .map(|(p, (data, _))| (p, data))
        .collect()
}

fn openssl(args: &[&str]) -> String {
    let out = Std::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The client certificate embedded in a kubeconfig, as PEM.
fn embedded_cert(kubeconfig: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("client-certificate-data:"))
        .unwrap();
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(line.trim())
        .unwrap()
}

fn verify_units(dir: &Path, name: &str) {
    let out = Std::new("systemd-analyze")
        .arg("verify")
        .arg(dir.join(format!("{name}.service")))
        .arg(dir.join(format!("{name}.timer")))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "systemd-analyze verify {name}: {text}"
    );
    // verify prints problems with the units named; other units on the host are not ours.
    assert!(!text.contains(&format!("{name}.")), "{text}");
}

#[test]
fn renew_auto_renews_exactly_the_expiring_leaves_and_restarts_their_static_pods() {
    if !peer_found("openssl") || !peer_found("systemd-analyze") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let cfg = dir.path().join("kubeadm.yaml");
    std::fs::write(&cfg, CONFIG).unwrap();
    for phase in [
        &["certs", "all"][..],
        &["kubeconfig", "all"],
        &["control-plane", "all"],
        &["etcd", "local"],
    ] {
        kubeadm(&root)
            .args(["init", "phase"])
            .args(phase)
            .arg("--config")
            .arg(&cfg)
            .assert()
            .success();
    }
    let pki = root.join("etc/kubernetes/pki");
    let kdir = root.join("etc/kubernetes");
    let end = |p: &Path| openssl(&["x509", "-noout", "-enddate", "-in", p.to_str().unwrap()]);
    let apiserver_end = end(&pki.join("apiserver.crt"));

    // check-expiration warns that nothing renews automatically.
    kubeadm(&root)
        .args(["certs", "check-expiration"])
        .assert()
        .success()
        .stderr(contains("no automatic renewal is scheduled"));

    // The dry run shows the renewals and the restart, and writes nothing.
    let before = files(&root);
    kubeadm(&root)
        .args(["certs", "renew", "--auto", "--within", "2d", "--dry-run"])
        .assert()
        .success()
        .stdout(contains("Expiring within 2d").and(contains("Would move")));
    assert_eq!(files(&root), before, "a dry run changes nothing");

    // Nothing expires within an hour: nothing is renewed.
    kubeadm(&root)
        .args(["certs", "renew", "--auto", "--within", "1h"])
        .assert()
        .success()
        .stdout(contains("Nothing expires within 1h"));
    assert_eq!(files(&root), before);

    let out = kubeadm(&root)
        .args([
            "certs",
            "renew",
            "--auto",
            "--within",
            "2d",
            "--restart-wait",
            "0s",
        ])
        .assert()
        .success()
        .stdout(contains(
            "Moved /etc/kubernetes/manifests/kube-apiserver.yaml",
        ));
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let after = files(&root);
    for ca in CAS {
        for ext in ["crt", "key"] {
            let p = pki.join(format!("{ca}.{ext}"));
            assert_eq!(before[&p], after[&p], "{ca}.{ext} must never be renewed");
        }
    }
    for leaf in LEAVES {
        let p = pki.join(format!("{leaf}.crt"));
        assert_ne!(
            before[&p], after[&p],
            "{leaf} expires within 2d and must be renewed"
        );
        let ca = if leaf.starts_with("etcd/") || *leaf == "apiserver-etcd-client" {
            "etcd/ca"
        } else if leaf.starts_with("front-proxy") {
            "front-proxy-ca"
        } else {
            "ca"
        };
        let ca = pki.join(format!("{ca}.crt"));
        openssl(&[
            "verify",
            "-CAfile",
            ca.to_str().unwrap(),
            p.to_str().unwrap(),
        ]);
    }
    assert_ne!(end(&pki.join("apiserver.crt")), apiserver_end);
    let tmp = dir.path().join("cert.pem");
    for kc in KUBECONFIGS {
        let p = kdir.join(kc);
        assert_ne!(
            embedded_cert(&p),
            {
                let old = dir.path().join("old.conf");
                std::fs::write(&old, &before[&p]).unwrap();
                embedded_cert(&old)
            },
            "{kc}: embedded certificate renewed"
        );
        std::fs::write(&tmp, embedded_cert(&p)).unwrap();
        openssl(&[
            "verify",
            "-CAfile",
            pki.join("ca.crt").to_str().unwrap(),
            tmp.to_str().unwrap(),
        ]);
    }
    let kubelet = kdir.join("kubelet.conf");
    assert_eq!(
        before[&kubelet], after[&kubelet],
        "the kubelet rotates its own certificate"
    );
    // Every manifest is back, unchanged.
    for m in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        let p = kdir.join(format!("manifests/{m}.yaml"));
        assert_eq!(before[&p], after[&p], "{m} manifest back in place");
        assert!(
            stdout.contains(&format!("Moved /etc/kubernetes/manifests/{m}.yaml back")),
            "{stdout}"
        );
    }
    // Renewed for the default year: nothing is due any more.
    kubeadm(&root)
        .args(["certs", "renew", "--auto", "--within", "2d"])
        .assert()
        .success()
        .stdout(contains("Nothing expires"));

    // The schedule: units that verify, and check-expiration stops warning.
    kubeadm(&root)
        .args([
            "certs", "renew", "schedule", "--every", "12h", "--within", "30d",
        ])
        .assert()
        .success();
    let units = root.join("etc/systemd/system");
    let service = std::fs::read_to_string(units.join("kubeadm-certs-renew.service")).unwrap();
    assert!(
        service.contains("certs renew --auto --within 30d"),
        "{service}"
    );
    verify_units(&units, "kubeadm-certs-renew");
    kubeadm(&root)
        .args(["certs", "check-expiration"])
        .assert()
        .success()
        .stderr(contains("no automatic renewal").not());
    kubeadm(&root)
        .args(["certs", "renew", "schedule", "--disable"])
        .assert()
        .success();
    assert!(!units.join("kubeadm-certs-renew.timer").exists());
    assert!(!units.join("kubeadm-certs-renew.service").exists());
}

#[test]
fn etcd_snapshot_schedule_writes_units_that_verify_and_dry_runs_write_nothing() {
    if !peer_found("systemd-analyze") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for c in ["etcd-ca", "etcd-healthcheck-client"] {
        kubeadm(root)
            .args([
                "init",
                "phase",
                "certs",
                c,
                "--kubernetes-version",
                "v1.33.0",
            ])
            .assert()
            .success();
    }
    let before = files(root);
    kubeadm(root)
        .args(["etcd", "snapshot", "save", "--dry-run"])
        .assert()
        .success()
        .stdout(
            contains("/var/lib/kubeadm/backups/etcd-snapshot-")
                .and(contains("Would write etcd snapshot")),
        );
    kubeadm(root)
        .args(["etcd", "snapshot", "schedule", "--dry-run"])
        .assert()
        .success()
        .stdout(contains("kubeadm-etcd-snapshot.timer"));
    assert_eq!(files(root), before, "dry runs write nothing");
    // An unreachable etcd: the error names the endpoint and the certificate, and no snapshot
    // (nor temp file) is left.
    kubeadm(root)
        .args([
            "etcd",
            "snapshot",
            "save",
            "--endpoints",
            "https://127.0.0.1:1",
            "--etcd-timeout",
            "2s",
        ])
        .assert()
        .failure()
        .stderr(
            contains("https://127.0.0.1:1")
                .and(contains("/etc/kubernetes/pki/etcd/healthcheck-client.crt")),
        );
    assert_eq!(files(root), before, "a failed save leaves nothing");

    kubeadm(root)
        .args([
            "etcd", "snapshot", "schedule", "--every", "12h", "--keep", "5",
        ])
        .assert()
        .success();
    let units = root.join("etc/systemd/system");
    let timer = std::fs::read_to_string(units.join("kubeadm-etcd-snapshot.timer")).unwrap();
    assert!(timer.contains("OnUnitActiveSec=43200s"), "{timer}");
    let service = std::fs::read_to_string(units.join("kubeadm-etcd-snapshot.service")).unwrap();
    assert!(service.contains("etcd snapshot save --keep 5"), "{service}");
    verify_units(&units, "kubeadm-etcd-snapshot");
    // Bad flags are refused, naming the flag.
    kubeadm(root)
        .args(["etcd", "snapshot", "schedule", "--every", "soon"])
        .assert()
        .failure()
        .stderr(contains("every"));
    kubeadm(root)
        .args(["etcd", "snapshot", "schedule", "--disable"])
        .assert()
        .success();
    assert!(!units.join("kubeadm-etcd-snapshot.timer").exists());
}
