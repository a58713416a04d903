//! Fixture tests: every check passes on a good tree and fails (naming the check and the fix) on
//! a tree with one thing wrong.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use kubeadm_effects::{DryRunEffects, RealEffects};

use super::*;
use crate::fixture::HostFixture;
use crate::report::{IgnoreSet, run_checks_in};

struct T {
    _dir: tempfile::TempDir,
    fx_root: std::path::PathBuf,
    f: HostFixture,
    env: BTreeMap<String, String>,
    uid: u32,
}

fn good() -> T {
    let dir = tempfile::tempdir().unwrap();
    let f = HostFixture::good(dir.path(), "node-1", "v1.37.0").unwrap();
    let mut env = BTreeMap::new();
    env.insert(
        "PATH".to_string(),
        "/usr/local/bin:/usr/bin:/bin".to_string(),
    );
    T {
        fx_root: dir.path().to_path_buf(),
        _dir: dir,
        f,
        env,
        uid: 0,
    }
}

impl T {
    fn run(&self, check: &dyn Check) -> Findings {
        let fx = RealEffects::new(&self.fx_root);
        let ctx = Context {
            fx: &fx,
            uid: self.uid,
            env: self.env.clone(),
        };
        check.run(&ctx)
    }

    fn pass(&self, check: &dyn Check) {
        let (w, e) = self.run(check);
        assert!(
            w.is_empty() && e.is_empty(),
            "{} should pass: warnings {w:?} errors {e:?}",
            check.name()
        );
    }

    /// Fails with an error (or a warning when `warning`) mentioning `text`, with a fix.
    fn fails(&self, check: &dyn Check, warning: bool, text: &str) -> Problem {
        let (w, e) = self.run(check);
        let hit = if warning { w } else { e };
        let p = hit
            .into_iter()
            .find(|p| p.found.contains(text))
            .unwrap_or_else(|| {
                panic!(
                    "{}: expected a {} containing {text:?}",
                    check.name(),
                    if warning { "warning" } else { "error" }
                )
            });
        assert!(
            p.fix.is_some(),
            "{}: a failure must say how to fix it: {p:?}",
            check.name()
        );
        p
    }
}

fn assert_fix(p: &Problem, text: &str) {
    let fix = p
        .fix
        .as_deref()
        .unwrap_or_else(|| panic!("no fix in {p:?}"));
    assert!(fix.contains(text), "fix {fix:?} should mention {text:?}");
}

#[test]
fn is_privileged_user() {
    let mut t = good();
    t.pass(&IsPrivilegedUser);
    t.uid = 1000;
    let p = t.fails(&IsPrivilegedUser, false, "not running as root");
    assert_fix(&p, "root");
}

#[test]
fn num_cpu() {
    let mut t = good();
    t.pass(&NumCpu { min: 2 });
    t.f.write("/proc/cpuinfo", "processor\t: 0\n").unwrap();
    let p = t.fails(
        &NumCpu { min: 2 },
        false,
        "the number of available CPUs 1 is less than the required 2",
    );
    assert_fix(&p, "2 CPUs");
    t.f.remove("/proc/cpuinfo").unwrap();
    t.fails(&NumCpu { min: 2 }, false, "/proc/cpuinfo");
}

#[test]
fn mem() {
    let mut t = good();
    t.pass(&Mem { min_mb: 1700 });
    t.f.write("/proc/meminfo", "MemTotal:        1024000 kB\n")
        .unwrap();
    let p = t.fails(
        &Mem { min_mb: 1700 },
        false,
        "the system RAM (1000 MB) is less than the minimum 1700 MB",
    );
    assert_fix(&p, "1700 MB");
}

#[test]
fn swap() {
    let mut t = good();
    t.pass(&Swap);
    t.f.write(
        "/proc/swaps",
        "Filename\tType\tSize\tUsed\tPriority\n/swapfile file 1048572 0 -2\n",
    )
    .unwrap();
    let p = t.fails(&Swap, true, "/swapfile");
    assert_fix(&p, "swapoff -a");
    // No /proc/swaps: nothing to say, as upstream.
    t.f.remove("/proc/swaps").unwrap();
    t.pass(&Swap);
}

#[test]
fn system_verification() {
    let mut t = good();
    t.pass(&SystemVerification);
    t.f.write(
        "/sys/fs/cgroup/cgroup.controllers",
        "cpuset cpu io hugetlb\n",
    )
    .unwrap();
    let p = t.fails(
        &SystemVerification,
        false,
        "required controllers are not available: memory, pids",
    );
    assert_fix(&p, "enable them");
    // cgroups v1 with everything enabled: only the maintenance-mode warning.
    t.f.remove("/sys/fs/cgroup/cgroup.controllers").unwrap();
    let table = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n".to_string()
        + &[
            "cpuset", "cpu", "cpuacct", "blkio", "memory", "devices", "freezer", "net_cls", "pids",
        ]
        .iter()
        .map(|s| format!("{s}\t1\t1\t1\n"))
        .collect::<String>();
    t.f.write("/proc/cgroups", &table).unwrap();
    let (w, e) = t.run(&SystemVerification);
    assert!(e.is_empty(), "{e:?}");
    assert!(w.iter().any(|p| p.found.contains("cgroups v1")), "{w:?}");
    t.f.write(
        "/proc/cgroups",
        &table.replace("memory\t1\t1\t1", "memory\t1\t1\t0"),
    )
    .unwrap();
    t.fails(
        &SystemVerification,
        false,
        "required subsystems are not enabled: memory",
    );
    t.f.remove("/proc/cgroups").unwrap();
    t.fails(&SystemVerification, false, "cannot detect cgroups");
    // Kernel.
    t.f.write(
        "/sys/fs/cgroup/cgroup.controllers",
        "cpuset cpu memory hugetlb pids\n",
    )
    .unwrap();
    t.f.write("/proc/sys/kernel/osrelease", "3.2.0-4-amd64\n")
        .unwrap();
    let p = t.fails(
        &SystemVerification,
        false,
        "kernel release 3.2.0-4-amd64 is unsupported",
    );
    assert_fix(&p, "upgrade the kernel");
    t.f.write("/proc/sys/kernel/osrelease", "4.4.0\n").unwrap();
    t.fails(&SystemVerification, true, "older than 4.19");
}

#[test]
fn hostname() {
    let mut t = good();
    t.pass(&Hostname {
        node_name: "node-1".into(),
    });
    t.f.write("/etc/hosts", "127.0.0.1 localhost\n").unwrap();
    let p = t.fails(
        &Hostname {
            node_name: "node-1".into(),
        },
        true,
        "hostname \"node-1\" could not be reached",
    );
    assert_fix(&p, "/etc/hosts");
    t.fails(
        &Hostname {
            node_name: "-bad-".into(),
        },
        true,
        "invalid node name format",
    );
}

#[test]
fn file_available() {
    let mut t = good();
    let c = FileAvailable::new("/etc/kubernetes/manifests/kube-apiserver.yaml");
    assert_eq!(
        c.name(),
        "FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml"
    );
    t.pass(&c);
    t.f.write("/etc/kubernetes/manifests/kube-apiserver.yaml", "x")
        .unwrap();
    let p = t.fails(
        &c,
        false,
        "/etc/kubernetes/manifests/kube-apiserver.yaml already exists",
    );
    assert_fix(&p, "kubeadm reset");
}

#[test]
fn dir_available() {
    let mut t = good();
    let c = DirAvailable::new("/var/lib/etcd");
    assert_eq!(c.name(), "DirAvailable--var-lib-etcd");
    t.pass(&c);
    std::fs::create_dir_all(t.f.path("/var/lib/etcd")).unwrap();
    t.pass(&c);
    t.f.write("/var/lib/etcd/member/snap/db", "x").unwrap();
    let p = t.fails(&c, false, "/var/lib/etcd is not empty");
    assert_fix(&p, "kubeadm reset");
}

#[test]
fn file_content() {
    let mut t = good();
    for (path, name) in [
        (
            "/proc/sys/net/ipv4/ip_forward",
            "FileContent--proc-sys-net-ipv4-ip_forward",
        ),
        (
            "/proc/sys/net/bridge/bridge-nf-call-iptables",
            "FileContent--proc-sys-net-bridge-bridge-nf-call-iptables",
        ),
        (
            "/proc/sys/net/ipv6/conf/default/forwarding",
            "FileContent--proc-sys-net-ipv6-conf-default-forwarding",
        ),
    ] {
        let c = FileContent::one(path);
        assert_eq!(c.name(), name);
        t.pass(&c);
        t.f.write(path, "0\n").unwrap();
        let p = t.fails(&c, false, &format!("{path} contents are not set to 1"));
        assert_fix(&p, "kubeadm host prepare");
        assert_fix(&p, &c.sysctl_key().unwrap());
        t.f.remove(path).unwrap();
        t.fails(&c, false, &format!("{path} does not exist"));
    }
    let p = t.fails(
        &FileContent::one("/proc/sys/net/bridge/bridge-nf-call-iptables"),
        false,
        "does not exist",
    );
    assert_fix(&p, "modprobe br_netfilter");
}

#[test]
fn file_existing() {
    let mut t = good();
    let c = FileExisting::labelled("/etc/etcd/ca.crt", "ExternalEtcdClientCertificates");
    assert_eq!(c.name(), "ExternalEtcdClientCertificates");
    let p = t.fails(&c, false, "/etc/etcd/ca.crt doesn't exist");
    assert_fix(&p, "etcd.external");
    t.f.write("/etc/etcd/ca.crt", "pem").unwrap();
    t.pass(&c);
}

#[test]
fn in_path() {
    let mut t = good();
    let c = InPath::mandatory("iptables");
    assert_eq!(c.name(), "FileExisting-iptables");
    t.pass(&c);
    t.f.remove("/usr/bin/iptables").unwrap();
    let p = t.fails(&c, false, "iptables not found in system path");
    assert_fix(&p, "install iptables");
    // Found in another PATH directory under the root.
    t.f.script("/usr/local/bin/iptables", "exit 0").unwrap();
    t.pass(&c);
    // Optional programs only warn.
    t.f.remove("/usr/bin/socat").unwrap();
    let p = t.fails(
        &InPath::optional("socat"),
        true,
        "socat not found in system path",
    );
    assert_fix(&p, "socat");
}

#[test]
fn port() {
    let t = good();
    let held = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let c = Port::new(port);
    assert_eq!(c.name(), format!("Port-{port}"));
    let p = t.fails(&c, false, &format!("Port {port} is in use"));
    assert_fix(&p, "ss -ltnp");
    drop(held);
    t.pass(&c);
}

#[test]
fn http_proxy() {
    let mut t = good();
    let c = HttpProxy {
        host: "192.168.0.10".into(),
    };
    t.pass(&c);
    t.env
        .insert("HTTPS_PROXY".into(), "proxy.example:3128".into());
    let p = t.fails(&c, true, "uses proxy \"http://proxy.example:3128\"");
    assert_fix(&p, "NO_PROXY");
    // Loopback never goes through a proxy.
    t.pass(&HttpProxy {
        host: "127.0.0.1".into(),
    });
    t.env
        .insert("no_proxy".into(), "localhost,192.168.0.0/16".into());
    t.pass(&c);
    t.env.insert("no_proxy".into(), ".example.com".into());
    t.pass(&HttpProxy {
        host: "api.example.com".into(),
    });
    t.fails(
        &HttpProxy {
            host: "api.example.org".into(),
        },
        true,
        "uses proxy",
    );
}

#[test]
fn http_proxy_cidr() {
    let mut t = good();
    let c = HttpProxyCidr {
        cidr: "10.96.0.0/12".into(),
    };
    t.pass(&c);
    t.pass(&HttpProxyCidr {
        cidr: String::new(),
    });
    t.env
        .insert("https_proxy".into(), "http://proxy:3128".into());
    let p = t.fails(&c, true, "connection to \"10.96.0.0/12\" uses proxy");
    assert_fix(&p, "add 10.96.0.0/12 to NO_PROXY");
    t.env.insert("NO_PROXY".into(), "10.96.0.0/12".into());
    t.pass(&c);
    t.fails(
        &HttpProxyCidr {
            cidr: "nonsense".into(),
        },
        false,
        "error parsing CIDR",
    );
}

#[test]
fn cri() {
    let mut t = good();
    let mut c = Cri::new(format!("unix://{}", fixture::CRI_SOCKET));
    c.timeout = std::time::Duration::from_millis(500);
    t.pass(&c);
    // A socket that accepts but never answers the Version call.
    t.f.listen_silent().unwrap();
    let p = t.fails(&c, false, "is not a CRI v1 container runtime");
    assert_fix(&p, "--cri-socket");
    t.f.stop_cri();
    let p = t.fails(&c, false, "cannot connect");
    assert_fix(&p, "--cri-socket");
    t.f.remove(fixture::CRI_SOCKET).unwrap();
    t.fails(&c, false, "does not exist");
    t.fails(
        &Cri::new("tcp://1.2.3.4:1"),
        false,
        "unsupported CRI endpoint",
    );
}

#[test]
fn kubelet_version() {
    let mut t = good();
    let v37 = Some(KubeVersion::parse("v1.37.0").unwrap());
    let c = KubeletVersion {
        kubernetes_version: v37.clone(),
    };
    t.pass(&c);
    t.f.script("/usr/bin/kubelet", "echo 'Kubernetes v1.30.2'")
        .unwrap();
    let p = t.fails(
        &c,
        false,
        "Kubelet version \"v1.30.2\" is lower than kubeadm can support",
    );
    assert_fix(&p, "v1.37");
    // Three minors of skew are fine from 1.28.
    t.f.script("/usr/bin/kubelet", "echo 'Kubernetes v1.34.1'")
        .unwrap();
    t.pass(&c);
    let c30 = KubeletVersion {
        kubernetes_version: Some(KubeVersion::parse("v1.30.0").unwrap()),
    };
    t.f.script("/usr/bin/kubelet", "echo 'Kubernetes v1.31.0'")
        .unwrap();
    t.fails(
        &c30,
        false,
        "the kubelet version is higher than the control plane version",
    );
    t.f.script("/usr/bin/kubelet", "echo garbage").unwrap();
    t.fails(&c, false, "Unable to parse output from Kubelet");
    t.f.remove("/usr/bin/kubelet").unwrap();
    t.fails(&c, false, "kubelet not found");
    assert_eq!(min_kubelet_minor(24), 23);
    assert_eq!(
        parse_kubelet_version("Kubernetes v1.31.2\n").unwrap().minor,
        31
    );
}

#[test]
fn service_kubelet() {
    let mut t = good();
    let c = Service {
        service: "kubelet".into(),
    };
    assert_eq!(c.name(), "Service-Kubelet");
    t.pass(&c);
    t.f.script(
        "/usr/bin/systemctl",
        "case \"$1\" in status) echo '  Loaded: loaded'; exit 3;; *) exit 1;; esac",
    )
    .unwrap();
    let p = t.fails(&c, true, "kubelet service is not enabled");
    assert_fix(&p, "systemctl enable kubelet.service");
    t.f.script("/usr/bin/systemctl", "echo '  Loaded: not-found'; exit 4")
        .unwrap();
    t.fails(&c, true, "kubelet service does not exist");
    t.f.remove("/usr/bin/systemctl").unwrap();
    t.fails(&c, true, "no supported init system");
}

#[test]
fn firewalld() {
    let mut t = good();
    let c = Firewalld {
        ports: vec![6443, 10250],
    };
    t.pass(&c);
    t.f.script("/usr/bin/systemctl", "case \"$1\" in status) echo '  Loaded: loaded'; exit 0;; is-active) echo active; exit 0;; *) exit 1;; esac").unwrap();
    let p = t.fails(
        &c,
        true,
        "firewalld is active, please ensure ports [6443 10250] are open",
    );
    assert_fix(&p, "firewall-cmd --permanent --add-port=6443/tcp");
}

#[test]
fn kubernetes_version() {
    let t = good();
    let kubeadm = KubeVersion::parse("v1.37.0").unwrap();
    t.pass(&KubernetesVersion {
        kubernetes: KubeVersion::parse("v1.37.3").unwrap(),
        kubeadm: kubeadm.clone(),
    });
    let p = t.fails(
        &KubernetesVersion {
            kubernetes: KubeVersion::parse("v1.38.0").unwrap(),
            kubeadm,
        },
        true,
        "Kubernetes version is greater than kubeadm version",
    );
    assert_fix(&p, "v1.38");
}

#[test]
fn ipvs_modules() {
    let mut t = good();
    t.fails(&IpvsModules, true, "following required kernel modules are not loaded: [ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh nf_conntrack]");
    let lines: String = IPVS_MODULES
        .iter()
        .map(|m| format!("{m} 1 0 - Live 0x0\n"))
        .collect();
    t.f.write("/proc/modules", &lines).unwrap();
    t.pass(&IpvsModules);
    // Built into the kernel counts too.
    t.f.write("/proc/modules", "ip_vs 1 0 - Live 0x0\n")
        .unwrap();
    let builtin: String = IPVS_MODULES
        .iter()
        .map(|m| format!("kernel/net/{m}.ko\n"))
        .collect();
    t.f.write("/lib/modules/6.1.0-18-amd64/modules.builtin", &builtin)
        .unwrap();
    t.pass(&IpvsModules);
}

/// A one-shot HTTP server answering `/version` with `body`.
fn fake_etcd(body: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.ends_with(b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(n) if n > 0 => req.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn external_etcd_version() {
    let t = good();
    let check = |eps: Vec<String>| ExternalEtcdVersion {
        etcd: kubeadm_api::v1beta4::ExternalEtcd {
            endpoints: eps,
            ..Default::default()
        },
    };
    let port = fake_etcd(r#"{"etcdserver":"3.5.16","etcdcluster":"3.5.0"}"#);
    t.pass(&check(vec![format!("http://127.0.0.1:{port}")]));
    let port = fake_etcd(r#"{"etcdserver":"3.3.10","etcdcluster":"3.3.0"}"#);
    let p = t.fails(
        &check(vec![format!("http://127.0.0.1:{port}")]),
        false,
        "only supports external etcd version >= 3.4.13. Current version: 3.3.10",
    );
    assert_fix(&p, "upgrade the external etcd");
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    t.fails(
        &check(vec![format!("http://127.0.0.1:{closed}")]),
        false,
        "cannot get the version of external etcd",
    );
}

/// Against a real etcd (3.5.1 here) serving plain http on loopback.
#[test]
fn external_etcd_version_against_real_etcd() {
    let etcd = std::env::var("KUBEADM_TEST_ETCD")
        .ok()
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("PATH").and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join("etcd"))
                    .find(|p| p.is_file())
            })
        });
    let Some(etcd) = etcd else {
        if std::env::var_os("CI").is_some() {
            panic!("etcd not found (set KUBEADM_TEST_ETCD or put etcd on PATH)");
        }
        eprintln!("skipping: etcd not found (set KUBEADM_TEST_ETCD or put etcd on PATH)");
        return;
    };
    let free = || {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (client, peer) = (free(), free());
    let data = tempfile::tempdir().unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Kill(
        std::process::Command::new(&etcd)
            .args([
                "--data-dir",
                &data.path().display().to_string(),
                "--listen-client-urls",
                &format!("http://127.0.0.1:{client}"),
                "--advertise-client-urls",
                &format!("http://127.0.0.1:{client}"),
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
                "--initial-cluster",
                &format!("default=http://127.0.0.1:{peer}"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t = good();
    let c = ExternalEtcdVersion {
        etcd: kubeadm_api::v1beta4::ExternalEtcd {
            endpoints: vec![format!("http://127.0.0.1:{client}")],
            ..Default::default()
        },
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (w, e) = t.run(&c);
        if w.is_empty() && e.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "etcd did not answer in 30 s: {e:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn names(role: Role, inputs: &Inputs) -> Vec<String> {
    checks_for(role, inputs).iter().map(|c| c.name()).collect()
}

fn init_inputs(version: &str) -> Inputs {
    Inputs {
        version: Some(KubeVersion::parse(version).unwrap()),
        node_name: "node-1".into(),
        cri_socket: format!("unix://{}", fixture::CRI_SOCKET),
        bind_port: 6443,
        advertise_address: "10.0.0.5".into(),
        service_subnet: "10.96.0.0/12".into(),
        local_etcd_data_dir: Some("/var/lib/etcd".into()),
        ..Default::default()
    }
}

#[test]
fn which_role_runs_which_check() {
    let init = names(Role::Init, &init_inputs("v1.37.0"));
    for n in [
        "NumCPU",
        "Mem",
        "KubernetesVersion",
        "Firewalld",
        "Port-6443",
        "Port-10259",
        "Port-10257",
        "FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml",
        "FileAvailable--etc-kubernetes-manifests-etcd.yaml",
        "HTTPProxy",
        "HTTPProxyCIDR",
        "CRI",
        "Swap",
        "FileExisting-ip",
        "FileExisting-touch",
        "SystemVerification",
        "Hostname",
        "KubeletVersion",
        "Service-Kubelet",
        "Port-10250",
        "FileContent--proc-sys-net-ipv4-ip_forward",
        "Port-2379",
        "Port-2380",
        "DirAvailable--var-lib-etcd",
    ] {
        assert!(
            init.contains(&n.to_string()),
            "init should run {n}: {init:?}"
        );
    }
    for n in [
        "FileExisting-crictl",
        "FileExisting-conntrack",
        "FileContent--proc-sys-net-bridge-bridge-nf-call-iptables",
        "RequiredIPVSKernelModulesAvailable",
        "IsPrivilegedUser",
    ] {
        assert!(
            !init.contains(&n.to_string()),
            "init v1.37 should not run {n}"
        );
    }
    // Older clusters: as upstream kubeadm of that minor.
    let old = names(Role::Init, &init_inputs("v1.29.0"));
    for n in [
        "FileExisting-crictl",
        "FileExisting-conntrack",
        "FileContent--proc-sys-net-bridge-bridge-nf-call-iptables",
    ] {
        assert!(old.contains(&n.to_string()), "init v1.29 should run {n}");
    }
    // IPv6.
    let mut v6 = init_inputs("v1.37.0");
    v6.advertise_address = "fd00::5".into();
    v6.service_subnet = "fd00:10:96::/108".into();
    let v6n = names(Role::Init, &v6);
    assert!(v6n.contains(&"FileContent--proc-sys-net-ipv6-conf-default-forwarding".to_string()));
    assert!(!v6n.contains(&"FileContent--proc-sys-net-ipv4-ip_forward".to_string()));
    // External etcd, ipvs, custom data dir.
    let mut ext = init_inputs("v1.37.0");
    ext.local_etcd_data_dir = None;
    ext.kube_proxy_ipvs = true;
    ext.external_etcd = Some(kubeadm_api::v1beta4::ExternalEtcd {
        endpoints: vec!["https://10.0.0.9:2379".into()],
        ca_file: "/etc/etcd/ca.crt".into(),
        cert_file: "/etc/etcd/c.crt".into(),
        key_file: "/etc/etcd/c.key".into(),
    });
    let e = names(Role::Init, &ext);
    assert!(e.contains(&"ExternalEtcdVersion".to_string()));
    assert_eq!(
        e.iter()
            .filter(|n| *n == "ExternalEtcdClientCertificates")
            .count(),
        3
    );
    assert!(e.contains(&"RequiredIPVSKernelModulesAvailable".to_string()));
    assert!(
        !e.contains(&"Port-2379".to_string()) && !e.iter().any(|n| n.starts_with("DirAvailable"))
    );
    let mut dd = init_inputs("v1.37.0");
    dd.local_etcd_data_dir = Some("/data/etcd".into());
    assert!(names(Role::Init, &dd).contains(&"DirAvailable--data-etcd".to_string()));

    // Join (worker).
    let join_inputs = Inputs {
        node_name: "w1".into(),
        cri_socket: "unix:///run/containerd/containerd.sock".into(),
        discovery_endpoint: Some("10.0.0.5:6443".into()),
        ..Default::default()
    };
    let join = names(Role::Join, &join_inputs);
    for n in [
        "FileAvailable--etc-kubernetes-kubelet.conf",
        "FileAvailable--etc-kubernetes-bootstrap-kubelet.conf",
        "FileAvailable--etc-kubernetes-pki-ca.crt",
        "CRI",
        "Swap",
        "KubeletVersion",
        "Port-10250",
        "HTTPProxy",
        "FileContent--proc-sys-net-ipv4-ip_forward",
    ] {
        assert!(
            join.contains(&n.to_string()),
            "join should run {n}: {join:?}"
        );
    }
    for n in ["NumCPU", "Port-6443", "DirAvailable--var-lib-etcd"] {
        assert!(!join.contains(&n.to_string()), "join should not run {n}");
    }
    // Control-plane join: worker checks, then control-plane ones without the node checks twice.
    let mut cp = init_inputs("v1.37.0");
    cp.discovery_endpoint = Some("10.0.0.5:6443".into());
    let cpn = names(Role::JoinControlPlane, &cp);
    for n in [
        "FileAvailable--etc-kubernetes-kubelet.conf",
        "NumCPU",
        "Port-6443",
        "Port-2379",
        "DirAvailable--var-lib-etcd",
    ] {
        assert!(
            cpn.contains(&n.to_string()),
            "join --control-plane should run {n}"
        );
    }
    assert!(!cpn.contains(&"FileAvailable--etc-kubernetes-pki-ca.crt".to_string()));
    assert!(cpn.contains(&"FileContent--proc-sys-net-ipv4-ip_forward".to_string()));
    assert_eq!(cpn.iter().filter(|n| *n == "KubeletVersion").count(), 1);
    // Reset: only the root check (run by run_checks itself).
    assert!(names(Role::Reset, &Inputs::default()).is_empty());
}

fn run_report(
    t: &T,
    role: Role,
    inputs: &Inputs,
    ignore: &[&str],
    dry_run: bool,
) -> (Result<Report, PreflightError>, String, String) {
    let fx = RealEffects::new(&t.fx_root);
    let ctx = Context {
        fx: &fx,
        uid: t.uid,
        env: t.env.clone(),
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let r = run_checks_in(
        &ctx,
        role,
        inputs,
        &IgnoreSet::new(ignore),
        dry_run,
        &mut out,
        &mut err,
    );
    (
        r,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn report_collects_everything_and_names_the_fix_and_flag() {
    let mut t = good();
    let mut inputs = init_inputs("v1.37.0");
    inputs.bind_port = free_port();
    inputs.local_etcd_data_dir = None;
    let (r, out, err) = run_report(&t, Role::Init, &inputs, &[], false);
    assert!(r.is_ok(), "good fixture should pass: {err}");
    assert!(out.contains("[preflight] Running pre-flight checks"));
    // Two problems at once: both reported.
    t.f.write("/proc/sys/net/ipv4/ip_forward", "0\n").unwrap();
    t.f.write(
        "/proc/swaps",
        "Filename Type Size Used Priority\n/dev/sda2 partition 1000 0 -2\n",
    )
    .unwrap();
    t.f.remove("/usr/bin/nsenter").unwrap();
    let (r, _, err) = run_report(&t, Role::Init, &inputs, &[], false);
    let PreflightError::Failed { names } = r.unwrap_err() else {
        panic!("expected failed checks")
    };
    assert_eq!(
        names,
        vec![
            "FileExisting-nsenter",
            "FileContent--proc-sys-net-ipv4-ip_forward"
        ]
    );
    assert!(
        err.contains("\t[WARNING Swap]: swap is on (/dev/sda2)"),
        "{err}"
    );
    assert!(err.contains("[preflight] Some fatal errors occurred:"));
    assert!(err.contains("\t[ERROR FileContent--proc-sys-net-ipv4-ip_forward]: /proc/sys/net/ipv4/ip_forward contents are not set to 1"));
    assert!(err.contains("--ignore-preflight-errors=FileContent--proc-sys-net-ipv4-ip_forward"));
    assert!(err.contains("fix: set net.ipv4.ip_forward=1"));
    // Case-insensitive ignore turns them into warnings.
    let (r, _, err) = run_report(
        &t,
        Role::Init,
        &inputs,
        &["fileexisting-NSENTER,filecontent--proc-sys-net-ipv4-ip_forward"],
        false,
    );
    assert!(r.is_ok(), "{err}");
    assert!(
        err.contains("[WARNING FileExisting-nsenter]") && !err.contains("[ERROR"),
        "{err}"
    );
    // `all`.
    let (r, _, err) = run_report(&t, Role::Init, &inputs, &["all"], false);
    assert!(r.is_ok() && !err.contains("[ERROR"), "{err}");
    // Dry-run: shown, not fatal.
    let (r, _, err) = run_report(&t, Role::Init, &inputs, &[], true);
    assert!(r.is_ok());
    assert!(
        err.contains(
            "[dryrun] would fail: [ERROR FileExisting-nsenter]: nsenter not found in system path"
        ),
        "{err}"
    );
}

#[test]
fn non_root_fails_fast() {
    let mut t = good();
    t.uid = 1000;
    t.f.write("/proc/sys/net/ipv4/ip_forward", "0\n").unwrap();
    let inputs = init_inputs("v1.37.0");
    let (r, _, err) = run_report(&t, Role::Init, &inputs, &[], false);
    assert_eq!(
        r.unwrap_err().to_string(),
        "preflight checks failed: IsPrivilegedUser"
    );
    assert!(err.contains("[ERROR IsPrivilegedUser]: user is not running as root"));
    assert!(
        !err.contains("ip_forward"),
        "other checks must not run: {err}"
    );
    // Reset runs only the root check.
    let (r, _, _) = run_report(&t, Role::Reset, &Inputs::default(), &[], false);
    assert!(r.is_err());
    let (r, _, err) = run_report(
        &t,
        Role::Reset,
        &Inputs::default(),
        &["IsPrivilegedUser"],
        false,
    );
    assert!(r.is_ok());
    assert!(err.contains("[WARNING IsPrivilegedUser]"));
}

#[test]
fn prepare_fixes_a_failing_host_and_is_idempotent() {
    let mut t = good();
    t.f.script("/usr/bin/kubelet", "echo 'Kubernetes v1.29.3'")
        .unwrap();
    t.f.write("/proc/modules", "").unwrap();
    t.f.remove("/proc/sys/net/bridge/bridge-nf-call-iptables")
        .unwrap();
    t.f.remove("/proc/sys/net/bridge/bridge-nf-call-ip6tables")
        .unwrap();
    t.f.write("/proc/sys/net/ipv4/ip_forward", "0\n").unwrap();
    t.f.write(
        "/proc/swaps",
        "Filename\tType\tSize\tUsed\tPriority\n/swap.img file 1000 0 -2\n",
    )
    .unwrap();
    let fstab = "UUID=1 / ext4 defaults 0 1\n/swap.img none swap sw 0 0\n# /old none swap sw 0 0\n";
    t.f.write("/etc/fstab", fstab).unwrap();
    t.f.write(
        "/etc/sysctl.d/k8s.conf",
        "net.ipv4.ip_forward = 0\nvm.max_map_count = 262144\n",
    )
    .unwrap();
    let mut inputs = init_inputs("v1.29.0");
    inputs.bind_port = free_port();
    inputs.local_etcd_data_dir = None;
    inputs.kube_proxy_ipvs = true;
    let (r, _, err) = run_report(&t, Role::Init, &inputs, &[], false);
    let failed = match r {
        Err(PreflightError::Failed { names }) => names,
        _ => panic!("should fail: {err}"),
    };
    assert_eq!(
        failed,
        vec![
            "FileContent--proc-sys-net-bridge-bridge-nf-call-iptables",
            "FileContent--proc-sys-net-ipv4-ip_forward"
        ]
    );

    // Dry-run first: nothing written.
    let dry = DryRunEffects::new(&t.fx_root, Box::new(std::io::sink()));
    let planned = prepare::prepare(&dry, &prepare::PrepareOptions { ipvs: true }).unwrap();
    assert!(!planned.changes.is_empty());
    assert_eq!(
        std::fs::read_to_string(t.f.path("/etc/fstab")).unwrap(),
        fstab
    );

    let fx = RealEffects::new(&t.fx_root);
    let done = prepare::prepare(&fx, &prepare::PrepareOptions { ipvs: true }).unwrap();
    assert_eq!(
        done, planned,
        "dry-run plans exactly what the real run does"
    );
    assert!(done.notes.iter().any(|n| n.contains("skipped `modprobe`")));
    let (r, _, err) = run_report(&t, Role::Init, &inputs, &[], false);
    assert!(r.is_ok(), "{err}");
    assert!(!err.contains("Swap") && !err.contains("IPVS"), "{err}");
    let modules = std::fs::read_to_string(t.f.path(prepare::MODULES_FILE)).unwrap();
    for m in [
        "br_netfilter",
        "overlay",
        "ip_vs",
        "ip_vs_rr",
        "ip_vs_wrr",
        "ip_vs_sh",
        "nf_conntrack",
    ] {
        assert!(modules.lines().any(|l| l == m), "{m} in {modules}");
    }
    let sysctl = std::fs::read_to_string(t.f.path(prepare::SYSCTL_FILE)).unwrap();
    assert_eq!(
        sysctl,
        "net.ipv4.ip_forward = 1\nvm.max_map_count = 262144\nnet.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\n"
    );
    assert_eq!(
        std::fs::read_to_string(t.f.path("/etc/fstab")).unwrap(),
        "UUID=1 / ext4 defaults 0 1\n#/swap.img none swap sw 0 0\n# /old none swap sw 0 0\n"
    );
    assert_eq!(
        std::fs::read_to_string(t.f.path(prepare::FSTAB_BACKUP)).unwrap(),
        fstab
    );

    let again = prepare::prepare(&fx, &prepare::PrepareOptions { ipvs: true }).unwrap();
    assert_eq!(
        again,
        prepare::PrepareReport::default(),
        "second run changes nothing"
    );
}

#[test]
fn prepare_on_the_live_root_runs_the_kernel_commands_in_dry_run_only() {
    // On `/`, in dry-run: modprobe / sysctl / swapoff are recorded, never run.
    let fx = DryRunEffects::new("/", Box::new(std::io::sink()));
    let _ = prepare::prepare(&fx, &prepare::PrepareOptions { ipvs: false }).unwrap();
    for a in fx.actions() {
        if let kubeadm_effects::Action::Run { command } = a {
            assert!(
                ["modprobe", "sysctl", "swapoff"].contains(&command[0].as_str()),
                "{command:?}"
            );
        }
    }
    assert!(Path::new("/").exists());
}

#[test]
fn join_inputs_from_a_join_configuration() {
    use kubeadm_api::v1beta4::{
        ApiEndpoint, BootstrapTokenDiscovery, JoinConfiguration, JoinControlPlane,
    };
    let mut j = JoinConfiguration::default();
    j.node_registration.name = "w1".into();
    j.node_registration.cri_socket = "unix:///run/crio/crio.sock".into();
    j.ca_cert_path = "/etc/kubernetes/pki/ca.crt".into();
    j.discovery.bootstrap_token = Some(BootstrapTokenDiscovery {
        api_server_endpoint: "10.0.0.5:6443".into(),
        ..Default::default()
    });
    let i = Inputs::from_join(&j);
    assert_eq!(Inputs::join_role(&j), Role::Join);
    assert_eq!(
        (i.node_name.as_str(), i.discovery_endpoint.as_deref()),
        ("w1", Some("10.0.0.5:6443"))
    );
    assert!(
        names(Role::Join, &i).contains(&"FileAvailable--etc-kubernetes-pki-ca.crt".to_string())
    );
    j.control_plane = Some(JoinControlPlane {
        local_api_endpoint: ApiEndpoint {
            advertise_address: "10.0.0.6".into(),
            bind_port: 7443,
        },
        certificate_key: "ab".repeat(32),
    });
    let i = Inputs::from_join(&j);
    assert_eq!(Inputs::join_role(&j), Role::JoinControlPlane);
    assert!(i.download_certs && i.bind_port == 7443);
    assert!(names(Role::JoinControlPlane, &i).contains(&"Port-7443".to_string()));
}

#[test]
fn ignore_list_parsing() {
    let s = IgnoreSet::parse(&["Swap, NumCPU", "port-6443"]).unwrap();
    assert!(
        s.ignores("swap") && s.ignores("NUMCPU") && s.ignores("Port-6443") && !s.ignores("Mem")
    );
    assert!(IgnoreSet::parse(&["all"]).unwrap().ignores("anything"));
    let e = IgnoreSet::parse(&["all", "Swap"]).unwrap_err();
    assert!(
        e.to_string()
            .contains("don't specify individual checks if 'all' is used"),
        "{e}"
    );
}

fn find_peer(name: &str, var: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var(var)
        .ok()
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("PATH").and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        });
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("{name} not found (set {var} or put {name} on PATH)");
        }
        eprintln!("skipping: {name} not found (set {var} or put {name} on PATH)");
    }
    found
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`<name>-ca.crt/key`) made by openssl.
fn openssl_ca(dir: &Path, name: &str) {
    let (key, crt) = (format!("{name}-ca.key"), format!("{name}-ca.crt"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "1",
            "-subj",
            &format!("/CN={name}-ca"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A leaf `<name>.crt/key` signed by `<ca>-ca`, with `ext` (an openssl extension block).
fn openssl_leaf(dir: &Path, ca: &str, name: &str, ext: &str) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}-ca.crt"),
            "-CAkey",
            &format!("{ca}-ca.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "1",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

/// Against a real etcd serving https with client-certificate auth, certificates made by openssl;
/// the CA and client pair are read from the fixture root.
#[test]
fn external_etcd_version_over_tls_against_real_etcd() {
    let Some(etcd) = find_peer("etcd", "KUBEADM_TEST_ETCD") else {
        return;
    };
    if find_peer("openssl", "KUBEADM_TEST_OPENSSL").is_none() {
        return;
    }
    let mut t = good();
    let pki = tempfile::tempdir().unwrap();
    let p = pki.path();
    openssl_ca(p, "etcd");
    openssl_ca(p, "other");
    openssl_leaf(
        p,
        "etcd",
        "server",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
    );
    openssl_leaf(p, "etcd", "client", "extendedKeyUsage=clientAuth\n");
    for (from, to) in [
        ("etcd-ca.crt", "ca.crt"),
        ("client.crt", "client.crt"),
        ("client.key", "client.key"),
        ("other-ca.crt", "other-ca.crt"),
    ] {
        t.f.write(
            &format!("/etc/etcd/{to}"),
            &std::fs::read_to_string(p.join(from)).unwrap(),
        )
        .unwrap();
    }
    let free = || {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (client, peer) = (free(), free());
    let data = tempfile::tempdir().unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let file = |n: &str| p.join(n).display().to_string();
    let _child = Kill(
        std::process::Command::new(&etcd)
            .args(["--data-dir", &data.path().display().to_string()])
            .args([
                "--listen-client-urls",
                &format!("https://127.0.0.1:{client}"),
            ])
            .args([
                "--advertise-client-urls",
                &format!("https://127.0.0.1:{client}"),
            ])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
            ])
            .args([
                "--initial-cluster",
                &format!("default=http://127.0.0.1:{peer}"),
            ])
            .args([
                "--cert-file",
                &file("server.crt"),
                "--key-file",
                &file("server.key"),
            ])
            .args([
                "--client-cert-auth",
                "--trusted-ca-file",
                &file("etcd-ca.crt"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ext = |ca: &str, cert: &str, key: &str| ExternalEtcdVersion {
        etcd: kubeadm_api::v1beta4::ExternalEtcd {
            endpoints: vec![format!("https://127.0.0.1:{client}")],
            ca_file: ca.into(),
            cert_file: cert.into(),
            key_file: key.into(),
        },
    };
    let good_check = ext(
        "/etc/etcd/ca.crt",
        "/etc/etcd/client.crt",
        "/etc/etcd/client.key",
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (w, e) = t.run(&good_check);
        if w.is_empty() && e.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "etcd did not answer over TLS in 30 s: {e:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // The wrong CA: the server is not trusted.
    let p = t.fails(
        &ext(
            "/etc/etcd/other-ca.crt",
            "/etc/etcd/client.crt",
            "/etc/etcd/client.key",
        ),
        false,
        "cannot get the version of external etcd",
    );
    assert!(
        p.found.contains("TLS") || p.found.contains("certificate"),
        "{p:?}"
    );
    // No client certificate: etcd refuses the handshake.
    t.fails(
        &ext("/etc/etcd/ca.crt", "", ""),
        false,
        "cannot get the version of external etcd",
    );
    // A CA file that is not there (under the root).
    t.fails(
        &ext("/etc/etcd/missing.crt", "", ""),
        false,
        "couldn't load external etcd's server certificate /etc/etcd/missing.crt",
    );
}
