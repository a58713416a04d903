//! `kubeadm reset` under a fixture `--rootfs`: removes exactly our files, keeps the directories,
//! never follows links out of the root, asks before doing anything, and dry-run changes nothing.

use std::fs;
use std::path::Path;

use assert_cmd::Command;

fn fixture(root: &Path, outside: &Path) {
    let w = |p: &str, text: &str| {
        let p = root.join(p.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    };
    for f in [
        "admin.conf",
        "super-admin.conf",
        "kubelet.conf",
        "controller-manager.conf",
        "scheduler.conf",
    ] {
        w(&format!("/etc/kubernetes/{f}"), "kubeconfig");
    }
    w("/etc/kubernetes/operator-notes.txt", "not ours");
    w("/etc/kubernetes/pki/ca.crt", "cert");
    w("/etc/kubernetes/pki/etcd/ca.key", "key");
    w("/etc/kubernetes/tmp/backup", "tmp");
    w(
        "/etc/kubernetes/manifests/etcd.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\nspec:\n  volumes:\n  - name: etcd-data\n    hostPath:\n      path: /data/etcd\n",
    );
    w("/data/etcd/member/snap/db", "etcd data");
    w("/var/lib/kubelet/config.yaml", "kubelet config");
    w("/var/lib/kubelet/pods/uid/volumes/x", "volume");
    w("/etc/cni/net.d/10-flannel.conflist", "cni");
    fs::write(outside.join("precious"), "keep").unwrap();
    std::os::unix::fs::symlink(outside, root.join("var/lib/kubelet/escape")).unwrap();
}

fn reset(root: &Path, extra: &[&str]) -> std::process::Output {
    Command::cargo_bin("kubeadm")
        .unwrap()
        .arg("reset")
        .arg("--rootfs")
        .arg(root)
        .args(extra)
        .write_stdin("")
        .output()
        .unwrap()
}

#[test]
fn reset_removes_our_files_and_nothing_else() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fixture(root.path(), outside.path());
    let out = reset(root.path(), &["--force"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = |p: &str| root.path().join(p.trim_start_matches('/'));
    for gone in [
        "/etc/kubernetes/admin.conf",
        "/etc/kubernetes/super-admin.conf",
        "/etc/kubernetes/kubelet.conf",
        "/etc/kubernetes/pki/ca.crt",
        "/etc/kubernetes/pki/etcd",
        "/etc/kubernetes/manifests/etcd.yaml",
        "/data/etcd/member",
        "/var/lib/kubelet/config.yaml",
        "/var/lib/kubelet/pods",
        "/var/lib/kubelet/escape",
    ] {
        assert!(
            fs::symlink_metadata(r(gone)).is_err(),
            "{gone} should be gone"
        );
    }
    for kept in [
        "/etc/kubernetes/pki",
        "/etc/kubernetes/manifests",
        "/var/lib/kubelet",
        "/data/etcd",
    ] {
        assert!(r(kept).is_dir(), "{kept} should stay as an empty directory");
    }
    assert_eq!(
        fs::read_to_string(r("/etc/kubernetes/operator-notes.txt")).unwrap(),
        "not ours"
    );
    assert_eq!(
        fs::read_to_string(r("/etc/kubernetes/tmp/backup")).unwrap(),
        "tmp",
        "tmp only with --cleanup-tmp-dir"
    );
    assert_eq!(
        fs::read_to_string(r("/etc/cni/net.d/10-flannel.conflist")).unwrap(),
        "cni",
        "CNI only with --cleanup-cni"
    );
    assert_eq!(
        fs::read_to_string(outside.path().join("precious")).unwrap(),
        "keep",
        "links are not followed"
    );
    assert!(
        stdout.contains("does not clean CNI configuration"),
        "{stdout}"
    );
    assert!(stdout.contains("iptables"), "{stdout}");
    assert!(stdout.contains("$HOME/.kube/config"), "{stdout}");
}

#[test]
fn reset_extras_clean_tmp_and_cni() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fixture(root.path(), outside.path());
    let out = reset(
        root.path(),
        &[
            "-f",
            "--cleanup-tmp-dir",
            "--cleanup-cni",
            "--cleanup-iptables",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!root.path().join("etc/kubernetes/tmp/backup").exists());
    assert!(
        !root
            .path()
            .join("etc/cni/net.d/10-flannel.conflist")
            .exists()
    );
    // iptables belongs to the live host; under --rootfs it is only noted.
    assert!(String::from_utf8_lossy(&out.stdout).contains("--cleanup-iptables skipped"));
}

#[test]
fn reset_asks_first_and_dry_run_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fixture(root.path(), outside.path());
    let before = snapshot(root.path());
    let out = reset(root.path(), &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("aborted reset operation"));
    assert_eq!(
        snapshot(root.path()),
        before,
        "a refused reset changes nothing"
    );
    let out = reset(root.path(), &["--dry-run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("[dryrun] Would remove the contents of \"/var/lib/kubelet\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("[dryrun] Would remove file \"/etc/kubernetes/admin.conf\""),
        "{stdout}"
    );
    assert_eq!(snapshot(root.path()), before, "dry-run changes nothing");
}

fn snapshot(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn reset_phases_are_listed_and_run_alone() {
    let help = Command::cargo_bin("kubeadm")
        .unwrap()
        .args(["reset", "phase", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for p in ["preflight", "remove-etcd-member", "cleanup-node"] {
        assert!(text.contains(p), "{p} missing from:\n{text}");
    }
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fixture(root.path(), outside.path());
    let r = |p: &str| root.path().join(p.trim_start_matches('/'));
    let phase = |name: &str, extra: &[&str]| {
        Command::cargo_bin("kubeadm")
            .unwrap()
            .args(["reset", "phase", name, "--rootfs"])
            .arg(root.path())
            .args(extra)
            .write_stdin("")
            .output()
            .unwrap()
    };
    // preflight alone asks, and with no answer refuses; nothing is touched.
    let out = phase("preflight", &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("aborted reset operation"));
    assert!(r("/etc/kubernetes/admin.conf").exists());
    // cleanup-node alone does not ask (that is preflight's job) and removes our files.
    let out = phase("cleanup-node", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!r("/etc/kubernetes/admin.conf").exists());
    assert!(r("/etc/kubernetes/operator-notes.txt").exists());
    assert_eq!(
        fs::read_to_string(outside.path().join("precious")).unwrap(),
        "keep"
    );
}
