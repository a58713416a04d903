//! init → join → reset end to end, each node under its own `--rootfs`, against the in-repo test
//! API server, with real etcd processes started from our own manifests:
//! init on A; refused joins (wrong CA hash, unknown/expired token, missing JWS, cluster-info
//! edited after signing, wrong certificate key, an impostor server); a worker join on B and a
//! control-plane join on C (etcd learner added, caught up and promoted: 2 voting members; C's
//! etcd starts late and a writer putting keys into A's etcd throughout sees no failure);
//! reset C (etcd back to 1 member); reset B (none of our files left).
//!
//! A test kubelet plays each node's kubelet: it answers healthz, does the TLS bootstrap from
//! bootstrap-kubelet.conf as a kubelet does (CSR with the bootstrap token, waits for the signed
//! certificate, writes kubelet.conf), registers the Node, publishes mirror Pods of the static
//! Pods, and runs etcd static Pods as processes (only the listen addresses are narrowed, since
//! every "host" here shares one loopback).

#[path = "support/file_modes.rs"]
mod file_modes;
#[path = "support/test_kubelet.rs"]
mod test_kubelet;

#[path = "support/control_plane.rs"]
mod control_plane;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::Duration;

use control_plane::{CERT_KEY, ControlPlaneJoin, EtcdWriter, TOKEN, WorkerJoin, init_config};
use kubeadm_testapi::realbins::RealBins;
use kubeadm_testapi::{TestApiConfig, TestApiServer};
use serde_json::{Value, json};
use test_kubelet::{KubeletSpec, TestKubelet, client_from, etcd_binary, free_port, kubeadm};

const VERSION: &str = "v1.32.0";

fn ok(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn refused(out: &std::process::Output, want: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "expected a refusal containing {want:?}"
    );
    assert!(stderr.contains(want), "expected {want:?} in:\n{stderr}");
}

fn read(root: &Path, p: &str) -> String {
    std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                _ => out.push(p),
            }
        }
    }
    out
}

/// Where the cluster runs.
enum Backend {
    /// The in-repo test API server (serving with A's certificates) reporting `version`; the
    /// test kubelets run only etcd, with this binary.
    TestServer {
        etcd: PathBuf,
        version: &'static str,
    },
    /// Real binaries (`KUBEADM_TEST_BIN_DIR`): the test kubelets run every static Pod, so A's
    /// kube-apiserver, kube-controller-manager (which approves and signs the kubelets' CSRs) and
    /// kube-scheduler come from our manifests.
    Real(RealBins),
}

impl Backend {
    /// The Kubernetes version deployed: the binaries' own for real ones.
    fn version(&self) -> String {
        match self {
            Backend::TestServer { version, .. } => version.to_string(),
            Backend::Real(bins) => bins
                .kubernetes_version()
                .expect("kube-apiserver --version names a version"),
        }
    }

    /// The static Pods a test kubelet runs, by component, with their binaries.
    fn binaries(&self) -> BTreeMap<String, PathBuf> {
        match self {
            Backend::TestServer { etcd, .. } => {
                BTreeMap::from([("etcd".to_string(), etcd.clone())])
            }
            Backend::Real(bins) => kubeadm_testapi::realbins::BINARIES
                .iter()
                .map(|b| (b.to_string(), bins.dir.join(b)))
                .collect(),
        }
    }

    /// Health-check timeouts in the init configuration: real components start slower.
    fn health_timeout(&self) -> &'static str {
        match self {
            Backend::TestServer { .. } => "30s",
            Backend::Real(_) => "2m0s",
        }
    }
}

/// The cluster through A's admin.conf: the same requests whichever server answers.
struct Admin {
    rt: tokio::runtime::Runtime,
    client: kube::Client,
}

impl Admin {
    fn new(root: &Path) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let text = read(root, "etc/kubernetes/admin.conf");
        let client = rt.block_on(client_from(&text)).unwrap();
        Admin { rt, client }
    }

    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(body.map(|b| b.to_string().into_bytes()).unwrap_or_default())
            .map_err(|e| e.to_string())?;
        self.rt
            .block_on(self.client.request::<Value>(req))
            .map_err(|e| format!("{method} {path}: {e}"))
    }

    fn get(&self, path: &str) -> Option<Value> {
        self.request("GET", path, None).ok()
    }

    fn items(&self, path: &str) -> Vec<Value> {
        self.get(path)
            .and_then(|l| l["items"].as_array().cloned())
            .unwrap_or_default()
    }

    fn create(&self, path: &str, obj: &Value) {
        self.request("POST", path, Some(obj)).unwrap();
    }
}

/// An object as it can be created elsewhere: without what its server set.
fn portable(mut obj: Value) -> Value {
    if let Some(m) = obj["metadata"].as_object_mut() {
        for k in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "managedFields",
        ] {
            m.remove(k);
        }
    }
    obj
}

fn etcd_members(root: &Path, endpoint: &str) -> Vec<kubeadm_etcd::Member> {
    let tls = kubeadm_etcd::TlsFiles {
        ca: std::fs::read(root.join("etc/kubernetes/pki/etcd/ca.crt")).unwrap(),
        cert: std::fs::read(root.join("etc/kubernetes/pki/etcd/healthcheck-client.crt")).unwrap(),
        key: std::fs::read(root.join("etc/kubernetes/pki/etcd/healthcheck-client.key")).unwrap(),
    };
    let c =
        kubeadm_etcd::EtcdClient::new(&[endpoint.to_string()], Some(&tls), Duration::from_secs(5))
            .unwrap();
    c.member_list().unwrap()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A JoinConfiguration for the refusal cases (short discovery timeout).
fn join_config(endpoint: &str, token: &str, hash: &str, certificate_key: Option<&str>) -> String {
    let cp = match certificate_key {
        Some(k) => format!(
            "controlPlane:\n  certificateKey: {k}\n  localAPIEndpoint: {{advertiseAddress: 127.0.0.3}}\n"
        ),
        None => String::new(),
    };
    format!(
        "apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken: {{apiServerEndpoint: \"{endpoint}\", token: {token}, caCertHashes: [\"{hash}\"]}}
nodeRegistration: {{name: attacker-target, ignorePreflightErrors: [all]}}
timeouts: {{discovery: 2s}}
{cp}"
    )
}

#[test]
fn init_join_worker_and_control_plane_then_reset() {
    let Some(etcd) = etcd_binary() else {
        return;
    };
    run(Backend::TestServer {
        etcd,
        version: VERSION,
    });
}

/// The same against a v1.22 cluster (kubelet-config-1.22, the `master` label and taint, no
/// etcd learner by default).
#[test]
fn init_join_worker_and_control_plane_then_reset_v1_22() {
    let Some(etcd) = etcd_binary() else {
        return;
    };
    run(Backend::TestServer {
        etcd,
        version: "v1.22.17",
    });
}

/// The same against a v1.23 cluster.
#[test]
fn init_join_worker_and_control_plane_then_reset_v1_23() {
    let Some(etcd) = etcd_binary() else {
        return;
    };
    run(Backend::TestServer {
        etcd,
        version: "v1.23.17",
    });
}

/// The same end-to-end test with a real control plane of the binaries' own version: the real
/// controller-manager approves and signs the kubelets' CSRs and the real bootstrap signer signs
/// cluster-info. Opt-in: run with `--include-ignored`; with the variable set, binaries that
/// cannot be used fail the test.
#[test]
#[ignore = "needs KUBEADM_TEST_BIN_DIR with etcd, kube-apiserver, kube-controller-manager, kube-scheduler"]
fn init_join_and_reset_against_real_binaries() {
    if let Some(bins) = RealBins::for_test("the real-binaries variant of the join end-to-end test")
    {
        run(Backend::Real(bins));
    }
}

/// A server that is not the cluster's API server, serving `cluster_info` (and the RBAC that
/// lets anyone read it) as the genuine one would.
fn impostor(admin: &Admin, cluster_info: Value) -> TestApiServer {
    let impostor_pki = kubeadm_testapi::pki::TestPki::generate().unwrap();
    let impostor = TestApiServer::start(impostor_pki.server_config()).unwrap();
    {
        let mut st = impostor.state();
        st.controllers_paused = true;
        let cm_rt = kubeadm_testapi::find("", "v1", "configmaps").unwrap();
        st.store
            .create(cm_rt, "kube-public", "cluster-info", portable(cluster_info))
            .unwrap();
        for resource in ["roles", "rolebindings"] {
            let rt = kubeadm_testapi::find("rbac.authorization.k8s.io", "v1", resource).unwrap();
            let name = "kubeadm:bootstrap-signer-clusterinfo";
            let obj = admin
                .get(&format!(
                    "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-public/{resource}/{name}"
                ))
                .unwrap();
            st.store
                .create(rt, "kube-public", name, portable(obj))
                .unwrap();
        }
    }
    impostor
}

/// The permission audit of a joined node's root; at least `min` entries must have been checked.
fn audit_node(root: &Path, node: &str, min: usize) {
    let (checked, problems) = file_modes::audit(
        root,
        // The test's patches, the kubelet's own certificate (the test kubelet's), what etcd
        // keeps in its data directory, and the static Pods' logs.
        &[
            "patches",
            "var/lib/kubelet/pki",
            "var/lib/etcd/member",
            "*.log",
        ],
    );
    assert!(
        problems.is_empty(),
        "permission audit of {node}:\n{}",
        problems.join("\n")
    );
    assert!(checked >= min, "only {checked} entries of {node} audited");
}

const CLUSTER_INFO: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";

fn run(backend: Backend) {
    // Every run uses etcd's fixed client and peer ports on the loopback addresses: one at a time.
    let _alone = kubeadm_testapi::support::fixed_etcd_ports_lock();
    let version = backend.version();
    let info = kubeadm_api::KubeVersion::parse(&version)
        .unwrap()
        .info()
        .unwrap();
    let binaries = backend.binaries();
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    for node in [&a, &b, &c] {
        std::fs::create_dir_all(node).unwrap();
    }
    let cfg_a = dir.path().join("init.yaml");
    let port = free_port("127.0.0.1");
    let healthz_a = free_port("127.0.0.1");
    write(
        &cfg_a,
        &init_config(
            "127.0.0.1",
            port,
            healthz_a,
            &version,
            backend.health_timeout(),
        ),
    );

    // A: certificates first, so the test API server can serve with A's apiserver certificate.
    ok(&kubeadm(
        &a,
        &[
            "init",
            "phase",
            "certs",
            "all",
            "--config",
            cfg_a.to_str().unwrap(),
        ],
    ));
    let _test_server = match backend {
        Backend::TestServer { .. } => {
            let cfg = TestApiConfig::from_pki_dir(&a.join("etc/kubernetes/pki"), &version).unwrap();
            Some(TestApiServer::start_on(&cfg, &format!("127.0.0.1:{port}")).unwrap())
        }
        // A's kubelet runs A's kube-apiserver from its manifest.
        Backend::Real(_) => None,
    };
    let endpoint = format!("127.0.0.1:{port}");
    // A kubelet that starts its etcd `etcd_delay` after the manifest appears.
    let kubelet_with = |root: &Path,
                        node: &str,
                        ip: &str,
                        healthz_port: u16,
                        control_plane: bool,
                        etcd_delay: Duration| {
        TestKubelet::start(KubeletSpec {
            root: root.to_path_buf(),
            node: node.into(),
            ip: ip.into(),
            healthz_port,
            binaries: if control_plane {
                binaries.clone()
            } else {
                BTreeMap::new()
            },
            version: version.clone(),
            on_start: None,
            node_ready: false,
            start_delays: BTreeMap::from([("etcd".to_string(), etcd_delay)]),
        })
    };
    let kubelet_for =
        |root: &Path, node: &str, ip: &str, healthz_port: u16, control_plane: bool| {
            kubelet_with(root, node, ip, healthz_port, control_plane, Duration::ZERO)
        };
    let kubelet_a = kubelet_for(&a, "cp-a", "127.0.0.1", healthz_a, true);
    let out = kubeadm(
        &a,
        &[
            "init",
            "--config",
            cfg_a.to_str().unwrap(),
            "--upload-certs",
            "--ignore-preflight-errors",
            "all",
        ],
    );
    let hash = control_plane::ca_hash(&kubelet_a.ok(&out));
    let admin = Admin::new(&a);
    // A's etcd runs from A's manifest.
    let wait = |what: &str, f: &dyn Fn() -> bool| kubelet_a.wait_for(what, f);
    wait("etcd on A", &|| {
        std::panic::catch_unwind(|| etcd_members(&a, "https://127.0.0.1:2379")).is_ok()
    });
    wait("the cluster-info signature", &|| {
        admin
            .get(CLUSTER_INFO)
            .is_some_and(|cm| cm["data"]["jws-kubeconfig-abcdef"].is_string())
    });
    wait("A's mirror Pods", &|| {
        admin
            .get("/api/v1/namespaces/kube-system/pods/etcd-cp-a")
            .is_some()
    });

    // Refusals: each with its own error and nothing written.
    let attacks = dir.path().join("attacks");
    let attack = |name: &str, config: String, want: &str| {
        let root = attacks.join(name);
        std::fs::create_dir_all(&root).unwrap();
        let file = dir.path().join(format!("{name}.yaml"));
        write(&file, &config);
        refused(
            &kubeadm(&root, &["join", "--config", file.to_str().unwrap()]),
            want,
        );
        assert!(
            files_under(&root).is_empty(),
            "{name} wrote {:?}",
            files_under(&root)
        );
    };
    let zeros = format!("sha256:{}", "0".repeat(64));
    attack(
        "wrong-hash",
        join_config(&endpoint, TOKEN, &zeros, None),
        "none of the public keys",
    );
    attack(
        "unknown-token",
        join_config(&endpoint, "zzzzzz.0123456789abcdef", &hash, None),
        "invalid for this cluster or it has expired",
    );
    // Tokens stored with kubeadm's own Secret builder; the cluster's controllers do the rest.
    let add_token = |token: &str, expires: &str, usages: &[&str]| {
        let t = kubeadm_api::v1beta4::BootstrapToken {
            token: kubeadm_api::BootstrapTokenString::parse(token).unwrap(),
            expires: Some(expires.into()),
            usages: usages.iter().map(|u| u.to_string()).collect(),
            ..Default::default()
        };
        let secret = kubeadm_cluster::token::secret(&t, jiff::Timestamp::now()).unwrap();
        admin.create(
            "/api/v1/namespaces/kube-system/secrets",
            &serde_json::to_value(&secret).unwrap(),
        );
    };
    // An expired token: the token cleaner deletes it and the signer never signs with it.
    add_token(
        "exp000.0123456789abcdef",
        "2000-01-01T00:00:00Z",
        &["signing", "authentication"],
    );
    attack(
        "expired-token",
        join_config(&endpoint, "exp000.0123456789abcdef", &hash, None),
        "invalid for this cluster or it has expired",
    );
    // A token that may authenticate but not sign: cluster-info carries no JWS for it.
    add_token(
        "nosign.0123456789abcdef",
        "2100-01-01T00:00:00Z",
        &["authentication"],
    );
    attack(
        "jws-missing",
        join_config(&endpoint, "nosign.0123456789abcdef", &hash, None),
        "invalid for this cluster or it has expired",
    );
    attack(
        "wrong-certificate-key",
        join_config(&endpoint, TOKEN, &hash, Some(&"f".repeat(64))),
        "error decoding secret data with provided key",
    );
    // cluster-info edited after signing, as a man in the middle would serve it: the signature
    // no longer matches.
    let genuine = admin.get(CLUSTER_INFO).unwrap();
    let mut edited = genuine.clone();
    let kc = edited["data"]["kubeconfig"]
        .as_str()
        .unwrap()
        .replace(&endpoint, "203.0.113.9:6443");
    edited["data"]["kubeconfig"] = json!(kc);
    let man_in_the_middle = impostor(&admin, edited);
    attack(
        "edited-cluster-info",
        join_config(&man_in_the_middle.addr().to_string(), TOKEN, &hash, None),
        "failed to verify JWS signature",
    );
    drop(man_in_the_middle);
    // An impostor that replays the genuine cluster-info (valid JWS, genuine CA) but cannot prove
    // it holds a certificate from that CA: the second, verified read fails.
    let replay = impostor(&admin, genuine);
    attack(
        "impostor",
        join_config(&replay.addr().to_string(), TOKEN, &hash, None),
        "impostor",
    );
    drop(replay);

    // Dry runs of a worker and a control-plane join: the cluster is read (discovery, its
    // configuration, the Node check), every change is printed, nothing is written and the API
    // server sees no write.
    let writes = |server: &Option<TestApiServer>| {
        server
            .as_ref()
            .map(|s| s.requests().iter().filter(|r| r.method != "GET").count())
    };
    let dry = dir.path().join("dry");
    for (name, extra) in [
        ("worker", vec![]),
        (
            "control-plane",
            vec![
                "--control-plane",
                "--certificate-key",
                CERT_KEY,
                "--apiserver-advertise-address",
                "127.0.0.4",
            ],
        ),
    ] {
        let root = dry.join(name);
        std::fs::create_dir_all(&root).unwrap();
        let writes_before = writes(&_test_server);
        let mut args = vec![
            "join",
            &endpoint,
            "--token",
            TOKEN,
            "--discovery-token-ca-cert-hash",
            &hash,
            "--node-name",
            "dry-node",
            "--ignore-preflight-errors",
            "all",
            "--dry-run",
        ];
        args.extend(extra.iter().copied());
        let stdout = ok(&kubeadm(&root, &args));
        for want in [
            "[dryrun] Would write file \"/etc/kubernetes/bootstrap-kubelet.conf\"",
            "[dryrun] Would write file \"/var/lib/kubelet/config.yaml\"",
            "[dryrun] Would wait for a healthy kubelet at http://127.0.0.1:",
            "[dryrun] Would wait for the kubelet to write /etc/kubernetes/kubelet.conf (TLS bootstrap)",
            "[dryrun] Would remove file \"/etc/kubernetes/bootstrap-kubelet.conf\"",
        ] {
            assert!(
                stdout.contains(want),
                "{name}: {want:?} missing from:\n{stdout}"
            );
        }
        if name == "control-plane" {
            for want in [
                "to \"/etc/kubernetes/pki/ca.key\" with mode 0600 (content not shown)",
                "[dryrun] Would write file \"/etc/kubernetes/manifests/kube-apiserver.yaml\"",
                "[dryrun] Would perform action LIST on resource \"pods\" in API group \"core/v1\"",
                "[dryrun] Would add the etcd member with peer URL https://127.0.0.4:2380 as a learner",
                "[dryrun] Would write file \"/etc/kubernetes/manifests/etcd.yaml\"",
                "to answer at https://127.0.0.4:2379 with a raft index within 50 of the leader's",
                "[dryrun] Would promote the learner etcd member",
                "[dryrun] Would wait for the etcd member at https://127.0.0.4:2379 to report itself healthy",
                "[mark-control-plane] Marking the node dry-node as control-plane",
                "[dryrun] Would perform action PATCH on resource \"nodes\" in API group \"core/v1\"",
            ] {
                assert!(
                    stdout.contains(want),
                    "{name}: {want:?} missing from:\n{stdout}"
                );
            }
            // Each heading comes before the requests it announces.
            let heading = stdout.find("[mark-control-plane] Marking").unwrap();
            let patch = stdout.find("Would perform action PATCH").unwrap();
            assert!(heading < patch, "{stdout}");
        }
        assert!(
            files_under(&root).is_empty(),
            "{name} --dry-run wrote {:?}",
            files_under(&root)
        );
        assert_eq!(
            writes(&_test_server),
            writes_before,
            "{name} --dry-run wrote to the cluster"
        );
    }
    assert_eq!(
        etcd_members(&a, "https://127.0.0.1:2379").len(),
        1,
        "a dry run added an etcd member"
    );

    // Worker join on B.
    // Patches are host paths: under the node's root.
    let patches_b = b.join("patches");
    let healthz_b = free_port("127.0.0.1");
    write(
        &patches_b.join("kubeletconfiguration+merge.yaml"),
        &format!("healthzPort: {healthz_b}\n"),
    );
    let worker_b = WorkerJoin::new(&endpoint, &hash, "worker-b");
    let join_b = worker_b.argv();
    let kubelet_b = kubelet_for(&b, "worker-b", "127.0.0.3", healthz_b, false);
    let out = kubeadm(&b, &join_b);
    let stdout = kubelet_b.ok(&out);
    assert!(
        stdout.contains("This node has joined the cluster"),
        "{stdout}"
    );
    assert!(b.join("etc/kubernetes/kubelet.conf").is_file());
    assert!(
        !b.join("etc/kubernetes/bootstrap-kubelet.conf").exists(),
        "the bootstrap credential must be removed"
    );
    assert_eq!(
        read(&b, "etc/kubernetes/pki/ca.crt"),
        read(&a, "etc/kubernetes/pki/ca.crt")
    );
    assert!(read(&b, "var/lib/kubelet/config.yaml").contains(&format!("healthzPort: {healthz_b}")));
    wait("worker-b's Node", &|| {
        admin.get("/api/v1/nodes/worker-b").is_some()
    });
    let csrs = admin.items("/apis/certificates.k8s.io/v1/certificatesigningrequests");
    let csr = csrs
        .iter()
        .find(|c| {
            c["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("node-csr-worker-b"))
        })
        .expect("worker-b's CSR");
    assert!(csr["status"]["certificate"].is_string(), "{csr}");
    // Permission audit of the worker: what join wrote has upstream's modes (CIS 4.1.x).
    audit_node(&b, "worker-b", 8);

    // Control-plane join on C: etcd grows from 1 to 2 voting members through a learner. C's
    // kubelet starts etcd only 4 s after the manifest appears, as a kubelet that has just started
    // takes its time: a member added as a voter would leave A's etcd without quorum until then.
    // A writer puts keys into A's etcd throughout the join: every put must succeed.
    let join_c = ControlPlaneJoin::new(&c, &endpoint, &hash, "cp-c", "127.0.0.2");
    let kubelet_c = kubelet_with(
        &c,
        "cp-c",
        "127.0.0.2",
        join_c.healthz,
        true,
        Duration::from_secs(4),
    );
    let writer = EtcdWriter::start(
        &control_plane::etcdctl_next_to(&binaries["etcd"]),
        &a.join("etc/kubernetes/pki"),
        "https://127.0.0.1:2379",
        "during-join",
    );
    let out = kubeadm(&c, &join_c.argv());
    let report = control_plane::assert_no_write_failed(writer, "C's control-plane join");
    let stdout = kubelet_c.ok(&out);
    assert!(stdout.contains("Announced new etcd member"), "{stdout}");
    assert!(stdout.contains("as a learner"), "{stdout}");
    assert!(stdout.contains("has caught up (raft index"), "{stdout}");
    assert!(stdout.contains("Promoted the learner"), "{stdout}");
    assert!(
        stdout.contains("at https://127.0.0.2:2379 is healthy"),
        "{stdout}"
    );
    // Seen from outside: C's member was a learner, then a voter.
    control_plane::assert_learner_then_voter(&report, "https://127.0.0.2:2380");
    for f in ["ca.key", "sa.key", "front-proxy-ca.key", "etcd/ca.key"] {
        assert_eq!(
            read(&c, &format!("etc/kubernetes/pki/{f}")),
            read(&a, &format!("etc/kubernetes/pki/{f}")),
            "{f} downloaded"
        );
    }
    assert!(
        read(&c, "etc/kubernetes/manifests/etcd.yaml").contains("--initial-cluster-state=existing")
    );
    // The member was promoted within the join: etcd answers with two voters at once.
    wait("etcd to answer with two members", &|| {
        std::panic::catch_unwind(|| etcd_members(&a, "https://127.0.0.1:2379"))
            .is_ok_and(|m| m.len() == 2)
    });
    let members = etcd_members(&a, "https://127.0.0.1:2379");
    assert_eq!(members.len(), 2, "{members:?}");
    assert!(members.iter().all(|m| !m.is_learner), "{members:?}");
    // Permission audit of the control-plane node (CIS 1.1.x and 4.1.x).
    audit_node(&c, "cp-c", 30);
    let node_c = admin.get("/api/v1/nodes/cp-c").unwrap();
    assert!(
        node_c["metadata"]["labels"]["node-role.kubernetes.io/control-plane"].is_string(),
        "{node_c}"
    );
    // The labels and taints of the version: `master` label up to 1.23, taints from the table.
    assert_eq!(
        node_c["metadata"]["labels"]["node-role.kubernetes.io/master"].is_string(),
        info.has_master_label(),
        "{node_c}"
    );
    let taint_keys: Vec<&str> = node_c["spec"]["taints"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["key"].as_str()).collect())
        .unwrap_or_default();
    // `node.kubernetes.io/*` taints are the node lifecycle controller's (a real
    // controller-manager marks the test kubelet's Node unreachable: it sends no heartbeats).
    let taint_keys: Vec<&str> = taint_keys
        .into_iter()
        .filter(|k| !k.starts_with("node.kubernetes.io/"))
        .collect();
    let want: Vec<&str> = kubeadm_cluster::node::default_taints(info)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(taint_keys, want, "{node_c}");

    // A dry-run reset of C reads the real member list, says which member it would remove,
    // and changes nothing: on disk or in etcd.
    // What kubeadm may touch: C's running etcd (its data dir) and its static Pods' logs change by
    // themselves while the dry run runs, so they are left out of the comparison.
    let kubeadm_files = |root: &Path| {
        let mut t = kubeadm_testapi::support::tree(root);
        t.retain(|p, _| {
            let rel = p.strip_prefix(root).unwrap_or(p);
            let log =
                rel.parent() == Some(Path::new("")) && rel.extension().is_some_and(|e| e == "log");
            !log && !rel.starts_with("var/lib/etcd")
        });
        t
    };
    let before = kubeadm_files(&c);
    let stdout = ok(&kubeadm(&c, &["reset", "--dry-run"]));
    assert!(
        stdout.contains("[dryrun] Would remove the etcd member"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[dryrun] Would remove file \"/etc/kubernetes/admin.conf\""),
        "{stdout}"
    );
    let after = kubeadm_files(&c);
    assert!(before == after, "reset --dry-run changed files under C");
    assert_eq!(etcd_members(&a, "https://127.0.0.1:2379").len(), 2);

    // Reset C: its member leaves etcd.
    ok(&kubeadm(&c, &["reset", "-f"]));
    drop(kubelet_c);
    let members = etcd_members(&a, "https://127.0.0.1:2379");
    assert_eq!(members.len(), 1, "{members:?}");

    // Reset B: none of our files remain.
    drop(kubelet_b);
    ok(&kubeadm(&b, &["reset", "-f"]));
    let left: Vec<PathBuf> = files_under(&b)
        .into_iter()
        .filter(|p| !p.starts_with(&patches_b))
        .collect();
    assert!(left.is_empty(), "reset left {left:?}");

    // kill -9 of a join at each phase boundary, then reset, then join again: succeeds.
    for marker in [
        "[preflight]",
        "[discovery]",
        "[kubelet-start]",
        "[kubelet-check]",
    ] {
        let kubelet = kubelet_for(&b, "worker-b", "127.0.0.3", healthz_b, false);
        let mut child = Process::new(assert_cmd::cargo::cargo_bin("kubeadm"))
            .arg("--rootfs")
            .arg(&b)
            .args(&join_b)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut seen = false;
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let Ok(line) = line else { break };
            if line.starts_with(marker) {
                seen = true;
                let _ = child.kill(); // SIGKILL: no clean-up runs
                break;
            }
        }
        let _ = child.wait();
        assert!(seen, "join never reached {marker}");
        drop(kubelet);
        ok(&kubeadm(&b, &["reset", "-f"]));
    }
    let kubelet_b = kubelet_for(&b, "worker-b", "127.0.0.3", healthz_b, false);
    let out = kubeadm(&b, &join_b);
    kubelet_b.ok(&out);
    assert!(b.join("etc/kubernetes/kubelet.conf").is_file());
    drop(kubelet_b);
    ok(&kubeadm(&b, &["reset", "-f"]));
    drop(kubelet_a);
}

/// controlPlaneMode: systemd on both control-plane nodes: init on A and a control-plane join on
/// C write units and env files, no etcd or control-plane manifest; each node's test kubelet
/// also plays systemd, starting etcd from its unit. C's member is added as a learner, caught up
/// and promoted (two voters), C's etcd unit carries the existing cluster, and reset C removes
/// its member (found from its env file) and every unit and env file.
#[test]
fn control_plane_join_and_reset_in_systemd_mode() {
    let Some(etcd) = etcd_binary() else {
        return;
    };
    let _alone = kubeadm_testapi::support::fixed_etcd_ports_lock();
    let dir = tempfile::tempdir().unwrap();
    let (a, c) = (dir.path().join("a"), dir.path().join("c"));
    for node in [&a, &c] {
        std::fs::create_dir_all(node).unwrap();
    }
    const MODE: &str = "---\napiVersion: kubeadm-rs.io/v1alpha1\nkind: ControlPlaneConfiguration\ncontrolPlaneMode: systemd\n";
    let cfg_a = dir.path().join("init.yaml");
    let (port, healthz_a) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    write(
        &cfg_a,
        &format!(
            "{}{MODE}",
            init_config("127.0.0.1", port, healthz_a, VERSION, "30s")
        ),
    );
    let cfg = cfg_a.to_str().unwrap();
    ok(&kubeadm(
        &a,
        &["init", "phase", "certs", "all", "--config", cfg],
    ));
    let server_cfg = TestApiConfig::from_pki_dir(&a.join("etc/kubernetes/pki"), VERSION).unwrap();
    let _server = TestApiServer::start_on(&server_cfg, &format!("127.0.0.1:{port}")).unwrap();
    let kubelet = |root: &Path, node: &str, ip: &str, healthz_port: u16| {
        TestKubelet::start(KubeletSpec {
            root: root.to_path_buf(),
            node: node.into(),
            ip: ip.into(),
            healthz_port,
            binaries: BTreeMap::from([("etcd".to_string(), etcd.clone())]),
            version: VERSION.into(),
            on_start: None,
            node_ready: false,
            start_delays: BTreeMap::new(),
        })
    };
    let kubelet_a = kubelet(&a, "cp-a", "127.0.0.1", healthz_a);
    let out = kubeadm(
        &a,
        &[
            "init",
            "--config",
            cfg,
            "--upload-certs",
            "--ignore-preflight-errors",
            "all",
        ],
    );
    let hash = control_plane::ca_hash(&kubelet_a.ok(&out));
    let units = |root: &Path| {
        for component in kubeadm_testapi::realbins::BINARIES {
            assert!(
                !root
                    .join(format!("etc/kubernetes/manifests/{component}.yaml"))
                    .exists(),
                "{component}: a manifest in systemd mode"
            );
            assert!(
                read(root, &format!("etc/systemd/system/{component}.service"))
                    .contains(&format!("ExecStart=/usr/local/bin/{component} $")),
                "{component}"
            );
        }
    };
    units(&a);
    kubelet_a.wait_for("etcd on A, from its unit", &|| {
        std::panic::catch_unwind(|| etcd_members(&a, "https://127.0.0.1:2379")).is_ok()
    });

    let join_c = ControlPlaneJoin::new(&c, &endpoint_of(port), &hash, "cp-c", "127.0.0.2");
    let kubelet_c = kubelet(&c, "cp-c", "127.0.0.2", join_c.healthz);
    let mut args = join_c.argv();
    args.extend(["--control-plane-mode", "systemd"]);
    let stdout = kubelet_c.ok(&kubeadm(&c, &args));
    for want in [
        "Announced new etcd member",
        "as a learner",
        "Promoted the learner",
        "at https://127.0.0.2:2379 is healthy",
        "Wrote the systemd unit \"/etc/systemd/system/etcd.service\"",
    ] {
        assert!(stdout.contains(want), "{want:?} missing:\n{stdout}");
    }
    units(&c);
    let etcd_env = read(&c, "etc/kubernetes/etcd.env");
    assert!(
        etcd_env.contains("--initial-cluster-state=existing"),
        "{etcd_env}"
    );
    let members = etcd_members(&a, "https://127.0.0.1:2379");
    assert_eq!(members.len(), 2, "{members:?}");
    assert!(members.iter().all(|m| !m.is_learner), "{members:?}");

    ok(&kubeadm(&c, &["reset", "-f"]));
    drop(kubelet_c);
    let members = etcd_members(&a, "https://127.0.0.1:2379");
    assert_eq!(members.len(), 1, "{members:?}");
    let left = kubeadm_testapi::realbins::service_files(&c);
    assert!(left.is_empty(), "reset left {left:?}");
    drop(kubelet_a);
}

fn endpoint_of(port: u16) -> String {
    format!("127.0.0.1:{port}")
}
