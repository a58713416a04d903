//! `kubeadm init phase preflight`, the preflight phase of `kubeadm init`, and `kubeadm host
//! prepare`, run as the real binary against fixture host trees under `--rootfs`.
//!
//! The tests run as root, so the non-root path uses `KUBEADM_TEST_UID` (honoured by debug builds
//! only). Ports 10250/10257/10259/2379/2380 are bound briefly, as the checks do on a real host;
//! the API server port is a free one per test.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;

use assert_cmd::Command;
use kubeadm_preflight::fixture::{CRI_SOCKET, HostFixture};

fn free_port() -> String {
    TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string()
}

fn kubeadm(root: &Path) -> Command {
    let mut c = Command::cargo_bin("kubeadm").unwrap();
    c.arg("--rootfs").arg(root);
    for v in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
        "KUBEADM_TEST_UID",
    ] {
        c.env_remove(v);
    }
    c.env("PATH", "/usr/local/bin:/usr/bin:/bin");
    c
}

fn preflight(root: &Path, extra: &[&str]) -> Command {
    let mut c = kubeadm(root);
    c.args([
        "init",
        "phase",
        "preflight",
        "--apiserver-advertise-address",
        "127.0.0.1",
        "--node-name",
        "node-1",
    ]);
    c.args([
        "--cri-socket",
        &format!("unix://{CRI_SOCKET}"),
        "--apiserver-bind-port",
        &free_port(),
    ]);
    c.args(extra);
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every file under `root` with its content and modification time.
fn snapshot(root: &Path) -> BTreeMap<String, (Vec<u8>, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                let m = e.metadata().unwrap();
                out.insert(
                    e.path().display().to_string(),
                    (std::fs::read(e.path()).unwrap(), m.modified().unwrap()),
                );
            }
        }
    }
    out
}

#[test]
fn non_root_init_fails_fast_on_is_privileged_user() {
    // The Port-2379/2380 checks bind etcd's ports: not while a test cluster's etcd holds them.
    let _ports = kubeadm_testapi::support::fixed_etcd_ports_lock();
    let dir = tempfile::tempdir().unwrap();
    let mut f = HostFixture::good(dir.path(), "node-1", "v1.37.0").unwrap();
    // Something else is wrong too: it must not even be looked at.
    f.write("/proc/sys/net/ipv4/ip_forward", "0\n").unwrap();
    let out = kubeadm(dir.path())
        .args([
            "init",
            "--apiserver-advertise-address",
            "127.0.0.1",
            "--node-name",
            "node-1",
        ])
        .args(["--cri-socket", &format!("unix://{CRI_SOCKET}")])
        .env("KUBEADM_TEST_UID", "1000")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("\t[ERROR IsPrivilegedUser]: user is not running as root (uid 1000)"),
        "{err}"
    );
    assert!(err.contains("fix: run kubeadm as root"), "{err}");
    assert!(
        err.contains("--ignore-preflight-errors=IsPrivilegedUser"),
        "{err}"
    );
    assert!(
        !err.contains("ip_forward"),
        "fail fast: no other check runs\n{err}"
    );
    assert!(
        err.contains("error: error execution phase preflight"),
        "{err}"
    );
    assert!(!f.path("/etc/kubernetes").exists(), "nothing written");

    // Ignored (case-insensitively): a warning, and the checks pass on a good host.
    f.write("/proc/sys/net/ipv4/ip_forward", "1\n").unwrap();
    let out = preflight(
        dir.path(),
        &["--ignore-preflight-errors", "isprivilegeduser"],
    )
    .env("KUBEADM_TEST_UID", "1000")
    .output()
    .unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("[WARNING IsPrivilegedUser]: user is not running as root"),
        "{err}"
    );
    assert!(text(&out.stdout).contains("[preflight] Running pre-flight checks"));
}

#[test]
fn ignore_all_turns_every_error_into_a_warning() {
    // The Port-2379/2380 checks bind etcd's ports: not while a test cluster's etcd holds them.
    let _ports = kubeadm_testapi::support::fixed_etcd_ports_lock();
    let dir = tempfile::tempdir().unwrap();
    // An empty root: almost everything fails.
    let out = preflight(dir.path(), &[])
        .env("KUBEADM_TEST_UID", "1000")
        .args(["--ignore-preflight-errors", "IsPrivilegedUser"])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(!out.status.success());
    // All failures in one report, each with its fix and its skip flag.
    for name in [
        "CRI",
        "NumCPU",
        "Mem",
        "FileExisting-ip",
        "KubeletVersion",
        "SystemVerification",
        "FileContent--proc-sys-net-ipv4-ip_forward",
    ] {
        assert!(
            err.contains(&format!("[ERROR {name}]")),
            "{name} missing:\n{err}"
        );
        assert!(
            err.contains(&format!(
                "to skip this check: --ignore-preflight-errors={name}\n"
            )),
            "{name}:\n{err}"
        );
    }
    assert!(
        err.contains("caused by: preflight checks failed: NumCPU, Mem, CRI, "),
        "{err}"
    );

    let out = preflight(dir.path(), &["--ignore-preflight-errors=all"])
        .env("KUBEADM_TEST_UID", "1000")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("[ERROR"), "{err}");
    for name in ["IsPrivilegedUser", "CRI", "NumCPU", "Mem", "KubeletVersion"] {
        assert!(err.contains(&format!("[WARNING {name}]")), "{name}:\n{err}");
    }
}

#[test]
fn dry_run_reports_would_fail_instead_of_stopping() {
    // The Port-2379/2380 checks bind etcd's ports: not while a test cluster's etcd holds them.
    let _ports = kubeadm_testapi::support::fixed_etcd_ports_lock();
    let dir = tempfile::tempdir().unwrap();
    let out = preflight(dir.path(), &["--dry-run"]).output().unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("[dryrun] would fail: [ERROR CRI]: container runtime is not running"),
        "{err}"
    );
    assert!(text(&out.stdout).contains("[preflight] Would pull the required images"));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "dry-run writes nothing"
    );
}

#[test]
fn host_prepare_turns_a_failing_preflight_into_a_passing_one() {
    // The Port-2379/2380 checks bind etcd's ports: not while a test cluster's etcd holds them.
    let _ports = kubeadm_testapi::support::fixed_etcd_ports_lock();
    let dir = tempfile::tempdir().unwrap();
    let mut f = HostFixture::good(dir.path(), "node-1", "v1.29.3").unwrap();
    f.write("/proc/modules", "").unwrap();
    f.remove("/proc/sys/net/bridge/bridge-nf-call-iptables")
        .unwrap();
    f.remove("/proc/sys/net/bridge/bridge-nf-call-ip6tables")
        .unwrap();
    f.write("/proc/sys/net/ipv4/ip_forward", "0\n").unwrap();
    f.write("/proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/swap.img                               file\t\t4194300\t\t0\t\t-2\n").unwrap();
    let fstab = "UUID=abcd / ext4 errors=remount-ro 0 1\n/swap.img\tnone\tswap\tsw\t0\t0\n";
    f.write("/etc/fstab", fstab).unwrap();
    let v = ["--kubernetes-version", "v1.29.3"];

    // 1. Preflight fails, naming the checks and the fix.
    let out = preflight(dir.path(), &v).output().unwrap();
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("[ERROR FileContent--proc-sys-net-bridge-bridge-nf-call-iptables]: /proc/sys/net/bridge/bridge-nf-call-iptables does not exist"), "{err}");
    assert!(err.contains("[ERROR FileContent--proc-sys-net-ipv4-ip_forward]: /proc/sys/net/ipv4/ip_forward contents are not set to 1"), "{err}");
    assert!(err.contains("`kubeadm host prepare` does both"), "{err}");
    assert!(
        err.contains("[WARNING Swap]: swap is on (/swap.img)"),
        "{err}"
    );

    // 2. Dry-run prepare writes nothing.
    let before = snapshot(dir.path());
    let out = kubeadm(dir.path())
        .args(["host", "prepare", "--dry-run"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("[dryrun] Would write file \"/etc/sysctl.d/k8s.conf\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("[host] Would turn swap off: /swap.img"),
        "{stdout}"
    );
    assert_eq!(snapshot(dir.path()), before, "dry-run changed files");

    // 3. Prepare.
    let out = kubeadm(dir.path())
        .args(["host", "prepare"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains(
            "[host] Done: persist kernel modules in /etc/modules-load.d/k8s.conf: br_netfilter, overlay"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("[host] Done: comment out the swap lines of /etc/fstab (previous file kept as /etc/fstab.kubeadm-bak)"), "{stdout}");
    assert!(stdout.contains("skipped `sysctl --system`"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(f.path("/etc/fstab.kubeadm-bak")).unwrap(),
        fstab
    );
    assert!(
        std::fs::read_to_string(f.path("/etc/fstab"))
            .unwrap()
            .contains("#/swap.img\tnone\tswap")
    );

    // 4. Preflight passes now, without the swap warning.
    let out = preflight(dir.path(), &v).output().unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("Swap") && !err.contains("[ERROR"), "{err}");

    // 5. Prepare again: nothing changes.
    let before = snapshot(dir.path());
    let out = kubeadm(dir.path())
        .args(["host", "prepare"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success());
    assert!(stdout.contains("[host] Nothing to change"), "{stdout}");
    assert!(!stdout.contains("Done"), "{stdout}");
    assert_eq!(snapshot(dir.path()), before, "second run touched files");
}

#[test]
fn ipvs_mode_checks_the_modules_and_prepare_loads_them() {
    // The Port-2379/2380 checks bind etcd's ports: not while a test cluster's etcd holds them.
    let _ports = kubeadm_testapi::support::fixed_etcd_ports_lock();
    let dir = tempfile::tempdir().unwrap();
    let f = HostFixture::good(dir.path(), "node-1", "v1.37.0").unwrap();
    let cfg = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    std::fs::write(
        &cfg,
        format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 127.0.0.1\n  bindPort: {}\nnodeRegistration:\n  name: node-1\n  criSocket: unix://{CRI_SOCKET}\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n---\napiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n",
            free_port()
        ),
    )
    .unwrap();
    let run = || {
        kubeadm(dir.path())
            .args(["init", "phase", "preflight", "--config"])
            .arg(&cfg)
            .output()
            .unwrap()
    };
    let out = run();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(
            "[WARNING RequiredIPVSKernelModulesAvailable]: the IPVS proxier will not be used"
        ),
        "{err}"
    );
    assert!(
        err.contains("kubeadm host prepare --kube-proxy-mode ipvs"),
        "{err}"
    );

    let out = kubeadm(dir.path())
        .args(["host", "prepare", "--kube-proxy-mode", "ipvs"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let modules = std::fs::read_to_string(f.path("/etc/modules-load.d/k8s.conf")).unwrap();
    assert!(
        modules.contains("ip_vs_wrr\n") && modules.contains("nf_conntrack\n"),
        "{modules}"
    );

    let out = run();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("IPVS"), "{err}");
}

#[test]
fn init_help_lists_the_preflight_phase() {
    let out = Command::cargo_bin("kubeadm")
        .unwrap()
        .args(["init", "phase", "--help"])
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains("preflight"),
        "{}",
        text(&out.stdout)
    );
    let out = Command::cargo_bin("kubeadm")
        .unwrap()
        .args(["host", "prepare", "--help"])
        .output()
        .unwrap();
    assert!(text(&out.stdout).contains("--kube-proxy-mode"));
}

#[test]
fn ignore_list_is_the_union_of_flag_and_config() {
    // The Port-2379/2380 checks bind etcd's ports: not while a test cluster's etcd holds them.
    let _ports = kubeadm_testapi::support::fixed_etcd_ports_lock();
    let dir = tempfile::tempdir().unwrap();
    let mut f = HostFixture::good(dir.path(), "node-1", "v1.37.0").unwrap();
    f.write("/proc/sys/net/ipv4/ip_forward", "0\n").unwrap();
    let cfg = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    std::fs::write(
        &cfg,
        format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 127.0.0.1\n  bindPort: {}\nnodeRegistration:\n  name: node-1\n  criSocket: unix://{CRI_SOCKET}\n  ignorePreflightErrors:\n  - IsPrivilegedUser\n",
            free_port()
        ),
    )
    .unwrap();
    let run = |flag: &str| {
        kubeadm(dir.path())
            .args(["init", "phase", "preflight", "--config"])
            .arg(&cfg)
            .args(["--ignore-preflight-errors", flag])
            .env("KUBEADM_TEST_UID", "1000")
            .output()
            .unwrap()
    };
    let out = run("FileContent--proc-sys-net-ipv4-ip_forward");
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("[WARNING IsPrivilegedUser]"), "{err}");
    assert!(
        err.contains("[WARNING FileContent--proc-sys-net-ipv4-ip_forward]"),
        "{err}"
    );
    let out = run("all,Swap");
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("don't specify individual checks if 'all' is used"),
        "{err}"
    );
}
