//! A whole `kubeadm init` (every phase) under a temp `--rootfs` against the in-repo test API
//! server, which serves with the apiserver certificate our certs phase produced and trusts our CA.
//! Then: every object of the facts file exists, the cluster-info JWS verifies with the token,
//! anonymous access is limited to cluster-info (checked with curl), and a second
//! init leaves the cluster state unchanged.

mod common;
#[path = "support/init_config.rs"]
mod init_config;

use std::path::Path;
use std::process::Command as Process;
use std::time::Duration;

use init_config::InitConfig;
use kubeadm_testapi::health::HealthServer;
use kubeadm_testapi::support::{kubeadm, peer};
use kubeadm_testapi::{TestApiConfig, TestApiServer};

fn read(root: &Path, p: &str) -> String {
    std::fs::read_to_string(root.join(p)).unwrap()
}

/// Names and payloads of the objects init owns, for comparing two runs (bootstrap token
/// Secrets are left out: re-running init refreshes their expiry, as upstream does).
fn state(server: &TestApiServer) -> Vec<String> {
    let mut out = Vec::new();
    for (group, resource) in [
        ("", "configmaps"),
        ("", "serviceaccounts"),
        ("", "services"),
        ("apps", "deployments"),
        ("apps", "daemonsets"),
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "rolebindings"),
        ("rbac.authorization.k8s.io", "clusterroles"),
        ("rbac.authorization.k8s.io", "clusterrolebindings"),
    ] {
        for mut o in server.list(group, resource) {
            if let Some(m) = o.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                for k in [
                    "resourceVersion",
                    "uid",
                    "creationTimestamp",
                    "managedFields",
                    "generation",
                ] {
                    m.remove(k);
                }
            }
            out.push(format!("{resource}: {o}"));
        }
    }
    out.sort();
    out
}

#[test]
fn full_init_against_the_test_api_server() {
    full_init_against_test_server("v1.33.13");
}

/// A v1.22 cluster as upstream kubeadm 1.22.17 made it: kubelet-config-1.22, the `master`
/// label and taint, v1beta3 in kubeadm-config, no kubeadm:cluster-admins.
#[test]
fn full_init_v1_22_against_the_test_api_server() {
    full_init_against_test_server("v1.22.17");
}

/// A v1.23 cluster as upstream kubeadm 1.23.17 made it.
#[test]
fn full_init_v1_23_against_the_test_api_server() {
    full_init_against_test_server("v1.23.17");
}

/// The minor of a `v1.N.P` version.
fn minor_of(version: &str) -> u32 {
    kubeadm_api::KubeVersion::parse(version).unwrap().minor
}

/// A whole init of `version` against the test API server, its output and cluster checked
/// against what the version table says that minor does, then a second init that converges.
fn full_init_against_test_server(version: &str) {
    let minor = minor_of(version);
    let info = kubeadm_api::version::minor_info(minor).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cfg_path = dir.path().join("kubeadm.yaml");
    let cfg_arg = cfg_path.display().to_string();
    // The server's port and the stand-ins' are known only once they run (below).
    InitConfig::new(version, 6443).with_token().write(&cfg_path);

    // The serving certificate must exist before the server starts: run the certs phase first
    // (init reuses what it finds, as upstream does).
    let out = kubeadm(
        root,
        &["init", "phase", "certs", "all", "--config", &cfg_arg],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = TestApiServer::start(
        TestApiConfig::from_pki_dir(&root.join("etc/kubernetes/pki"), version).unwrap(),
    )
    .unwrap();
    // The kubelet, controller-manager and scheduler are played by health endpoints.
    let (cert, key) = (
        read(root, "etc/kubernetes/pki/apiserver.crt"),
        read(root, "etc/kubernetes/pki/apiserver.key"),
    );
    let kubelet = HealthServer::http(true).unwrap();
    let kcm = HealthServer::https(&cert, &key, true).unwrap();
    let sched = HealthServer::https(&cert, &key, true).unwrap();
    // The health ports of the stand-ins (v1.33 waits for every control-plane component by
    // default).
    InitConfig::new(version, server.addr().port())
        .with_token()
        .health_ports(kubelet.port(), kcm.port(), sched.port())
        .write(&cfg_path);
    // The kubelet registers the Node and, after its TLS bootstrap, keeps its rotating client
    // certificate in kubelet-client-current.pem; the test plays that part.
    server.register_node("cp-1").unwrap();
    std::fs::create_dir_all(root.join("var/lib/kubelet/pki")).unwrap();
    std::fs::write(
        root.join("var/lib/kubelet/pki/kubelet-client-current.pem"),
        "placeholder",
    )
    .unwrap();
    let init_args = [
        "init",
        "--config",
        &cfg_arg,
        "--ignore-preflight-errors",
        "all",
        "--upload-certs",
    ];

    let out = kubeadm(root, &init_args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut phase_lines = vec![
        "[certs]",
        "[kubeconfig]",
        "[etcd]",
        "[control-plane]",
        "[kubelet-start]",
        "[upload-config]",
        "[mark-control-plane]",
        "[bootstrap-token]",
        "[kubelet-finalize] Updating \"/etc/kubernetes/kubelet.conf\" to point to a rotatable kubelet client certificate and key",
        "[addons]",
    ];
    // The kubelet is checked first from 1.31; every component from 1.33 (gate default).
    if info.kubelet_check_first() {
        phase_lines.push("[kubelet-check] The kubelet is healthy after");
    }
    let all_components = info
        .wait_for_all_control_plane_components_gate()
        .is_some_and(|(default, _)| default);
    if all_components {
        phase_lines.extend([
            "[control-plane-check] kube-apiserver is healthy after",
            "[control-plane-check] kube-controller-manager is healthy after",
            "[control-plane-check] kube-scheduler is healthy after",
        ]);
    } else {
        phase_lines.push("[api-check] Waiting for a healthy API server");
    }
    for phase_line in phase_lines {
        assert!(
            stdout.contains(phase_line),
            "no {phase_line} output:\n{stdout}"
        );
    }
    if all_components {
        // The health checks went to the addresses of the manifests.
        assert!(
            stdout.contains(&format!(
                "Checking kube-scheduler at https://127.0.0.1:{}/livez",
                sched.port()
            )),
            "{stdout}"
        );
        assert!(kubelet.hits() > 0 && kcm.hits() > 0 && sched.hits() > 0);
    }
    // The kubelet ConfigMap's name follows the version.
    let kubelet_config = info.kubelet_config_map_name(&Default::default());
    assert!(
        stdout.contains(&format!(
            "[kubelet] Creating a ConfigMap \"{kubelet_config}\""
        )),
        "{stdout}"
    );
    // 1.22 turns the controller-manager's and scheduler's insecure port off; later minors do not
    // pass the flag.
    for c in ["kube-controller-manager", "kube-scheduler"] {
        let manifest = read(root, &format!("etc/kubernetes/manifests/{c}.yaml"));
        assert_eq!(
            manifest.contains("- --port=0"),
            info.insecure_port_zero(),
            "{c} {version}:\n{manifest}"
        );
    }
    assert!(stdout.contains("kubeadm join 127.0.0.1:"), "{stdout}");
    assert!(
        stdout.contains("--discovery-token-ca-cert-hash sha256:"),
        "{stdout}"
    );
    for f in [
        "etc/kubernetes/admin.conf",
        "etc/kubernetes/manifests/kube-apiserver.yaml",
        "etc/kubernetes/manifests/etcd.yaml",
        "var/lib/kubelet/config.yaml",
    ] {
        assert!(root.join(f).is_file(), "{f}");
    }
    // kubelet-finalize: the kubelet's kubeconfig reads the rotating certificate, 0600.
    let kubelet_conf = read(root, "etc/kubernetes/kubelet.conf");
    assert!(
        kubelet_conf
            .contains("client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem"),
        "{kubelet_conf}"
    );
    assert!(
        kubelet_conf.contains("client-key: /var/lib/kubelet/pki/kubelet-client-current.pem"),
        "{kubelet_conf}"
    );
    assert!(!kubelet_conf.contains("client-key-data"), "{kubelet_conf}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root.join("etc/kubernetes/kubelet.conf"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    check_cluster(root, &server.url(), minor, &|g, r, ns, n| {
        server.get(g, r, ns, n)
    });

    // A second init converges: the same objects with the same content.
    let before = state(&server);
    let owned_before = owned_state(minor, &|g, r, ns, n| server.get(g, r, ns, n));
    let out = kubeadm(root, &init_args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.reconcile();
    assert_eq!(
        state(&server),
        before,
        "re-running init changed the cluster"
    );
    assert_eq!(
        owned_state(minor, &|g, r, ns, n| server.get(g, r, ns, n)),
        owned_before
    );
}

/// A getter of cluster objects: (group, plural resource, namespace or "", name).
type Get<'a> = &'a dyn Fn(&str, &str, &str, &str) -> Option<serde_json::Value>;

/// What a full init must leave, whatever serves the API: every object of the facts file,
/// v1beta4 kubeadm-config, the node labelled and tainted, cluster-info signed with the token by
/// the bootstrapsigner, and anonymous access limited to cluster-info.
fn check_cluster(root: &Path, api_url: &str, minor: u32, get: Get) {
    let upload_certs = [
        ("", "secrets", "kube-system", "kubeadm-certs"),
        (
            "rbac.authorization.k8s.io",
            "roles",
            "kube-system",
            "kubeadm:kubeadm-certs",
        ),
    ];
    let info = kubeadm_api::version::minor_info(minor).unwrap();
    for (g, r, ns, n) in common::init_objects(minor) {
        assert!(get(g, r, ns, &n).is_some(), "missing {r} {ns}/{n}");
    }
    for &(g, r, ns, n) in &upload_certs {
        assert!(get(g, r, ns, n).is_some(), "missing {r} {ns}/{n}");
    }
    // No kubeadm:cluster-admins before 1.29 (admin.conf is in system:masters).
    assert_eq!(
        get(
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            "",
            "kubeadm:cluster-admins"
        )
        .is_some(),
        info.has_super_admin()
    );
    // Nodes may read the kubelet ConfigMap of this minor's name.
    let kubelet_config = info.kubelet_config_map_name(&Default::default());
    let role = get(
        "rbac.authorization.k8s.io",
        "roles",
        "kube-system",
        &format!("kubeadm:{kubelet_config}"),
    )
    .unwrap();
    assert_eq!(
        role["rules"][0]["resourceNames"],
        serde_json::json!([kubelet_config])
    );
    let cfg = get("", "configmaps", "kube-system", "kubeadm-config").unwrap();
    // v1beta4 is uploaded from 1.31, v1beta3 before.
    let want = info.config_api_version();
    assert!(
        cfg["data"]["ClusterConfiguration"]
            .as_str()
            .unwrap()
            .contains(want),
        "1.{minor} uploads {want}"
    );
    let node = get("", "nodes", "", "cp-1").unwrap();
    assert_eq!(
        node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"],
        ""
    );
    // The deprecated master label up to 1.23.
    assert_eq!(
        node["metadata"]["labels"]
            .get("node-role.kubernetes.io/master")
            .is_some(),
        info.has_master_label(),
        "{node}"
    );
    // Exactly the taints of the minor: master up to 1.24, control-plane from 1.24.
    let taints: Vec<(String, String)> = node["spec"]["taints"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|t| {
            (
                t["key"].as_str().unwrap_or_default().to_string(),
                t["effect"].as_str().unwrap_or_default().to_string(),
            )
        })
        // A real node lifecycle controller adds `node.kubernetes.io/not-ready` to a Node no
        // kubelet reports for: its taints, not kubeadm's.
        .filter(|(k, _)| !k.starts_with("node.kubernetes.io/"))
        .collect();
    let want_taints: Vec<(String, String)> = kubeadm_cluster::node::default_taints(info)
        .into_iter()
        .map(|(k, e)| (k.to_string(), e.to_string()))
        .collect();
    assert_eq!(taints, want_taints);
    // CoreDNS tolerates them all, so it can run on this node.
    let coredns = get("apps", "deployments", "kube-system", "coredns").unwrap();
    let tolerations = coredns["spec"]["template"]["spec"]["tolerations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (key, _) in &want_taints {
        assert!(
            tolerations.iter().any(|t| t["key"] == key.as_str()),
            "CoreDNS does not tolerate {key}: {tolerations:?}"
        );
    }

    // The bootstrap signer signs cluster-info with our token (a real controller-manager may
    // take a moment).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let ci = loop {
        let ci = get("", "configmaps", "kube-public", "cluster-info").unwrap();
        if ci["data"]["jws-kubeconfig-abcdef"].is_string() || std::time::Instant::now() > deadline {
            break ci;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let kubeconfig = ci["data"]["kubeconfig"].as_str().unwrap();
    let jws = ci["data"]["jws-kubeconfig-abcdef"]
        .as_str()
        .expect("signed by the bootstrapsigner");
    assert!(kubeadm_cluster::jws::verify(
        kubeconfig,
        jws,
        "abcdef",
        "0123456789abcdef"
    ));
    assert!(!kubeadm_cluster::jws::verify(
        kubeconfig,
        jws,
        "abcdef",
        "0123456789abcdeX"
    ));

    // Anonymous may read cluster-info and nothing else (a real HTTPS client, curl, without
    // credentials, trusting our CA).
    if let Some(curl) = peer("curl", None) {
        let ca = root.join("etc/kubernetes/pki/ca.crt");
        let status = |path: &str| {
            let out = Process::new(&curl)
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--max-time",
                    "20",
                    "--cacert",
                ])
                .arg(&ca)
                .arg(format!("{api_url}{path}"))
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        assert_eq!(
            status("/api/v1/namespaces/kube-public/configmaps/cluster-info"),
            "200"
        );
        for denied in [
            "/api/v1/namespaces/kube-system/configmaps/kubeadm-config",
            "/api/v1/namespaces/kube-public/configmaps",
            "/api/v1/namespaces/kube-system/secrets/kubeadm-certs",
            "/api/v1/nodes",
        ] {
            assert_eq!(status(denied), "403", "anonymous read {denied}");
        }
    }
}

/// The objects init owns (but the token Secrets, whose expiry a re-run refreshes), without
/// what the server changes on its own (versions, timestamps, status), for comparing two runs
/// against any server.
fn owned_state(minor: u32, get: Get) -> Vec<String> {
    let mut out = Vec::new();
    for (g, r, ns, n) in common::init_objects(minor) {
        if r == "secrets" {
            continue;
        }
        let Some(mut o) = get(g, r, ns, &n) else {
            out.push(format!("{r} {ns}/{n}: missing"));
            continue;
        };
        if let Some(obj) = o.as_object_mut() {
            obj.remove("status");
        }
        if let Some(m) = o.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            for k in [
                "resourceVersion",
                "uid",
                "creationTimestamp",
                "managedFields",
                "generation",
                "annotations",
            ] {
                m.remove(k);
            }
        }
        out.push(format!("{r} {ns}/{n}: {o}"));
    }
    out
}

/// The same full init against real kube-apiserver, kube-controller-manager, kube-scheduler and
/// etcd started from our own manifests with our PKI (`KUBEADM_TEST_BIN_DIR`), deploying the
/// binaries' own version. The kubelet is still a stand-in (its healthz), and the test registers
/// the Node as the kubelet would. Opt-in: run with `--include-ignored`; with the variable set,
/// binaries that cannot be used fail the test.
#[test]
#[ignore = "needs KUBEADM_TEST_BIN_DIR with etcd, kube-apiserver, kube-controller-manager, kube-scheduler"]
fn full_init_against_real_binaries() {
    full_init_real(false);
}

/// The same init with `controlPlaneMode: systemd`: the four components run from the units and
/// env files kubeadm writes (started as systemd would start them, `RealControlPlane::start_units`),
/// their binaries under the root's `/usr/local/bin`.
#[test]
#[ignore = "needs KUBEADM_TEST_BIN_DIR with etcd, kube-apiserver, kube-controller-manager, kube-scheduler"]
fn full_init_in_systemd_mode_against_real_binaries() {
    full_init_real(true);
}

fn full_init_real(systemd: bool) {
    use kubeadm_testapi::realbins::{BINARIES, RealBins, RealControlPlane};
    let Some(bins) = RealBins::for_test("the real-binaries variant of the full init") else {
        return;
    };
    let Some(kubectl) = peer("kubectl", None) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let cfg_path = dir.path().join("kubeadm.yaml");
    let cfg_arg = cfg_path.display().to_string();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let kubelet = HealthServer::http(true).unwrap();
    let api_port = free();
    // Deploy the version the binaries are.
    let version = bins
        .kubernetes_version()
        .expect("kube-apiserver --version names a version");
    let minor = minor_of(&version);
    // Real components take longer than the stand-ins: allow them two minutes.
    let mut config = InitConfig::new(&version, api_port)
        .with_token()
        .health_ports(kubelet.port(), free(), free())
        .health_timeout("2m0s")
        .yaml();
    if systemd {
        config.push_str(
            "---\napiVersion: kubeadm-rs.io/v1alpha1\nkind: ControlPlaneConfiguration\ncontrolPlaneMode: systemd\n",
        );
        let dir = root.join("usr/local/bin");
        std::fs::create_dir_all(&dir).unwrap();
        for b in BINARIES {
            if std::fs::hard_link(bins.dir.join(b), dir.join(b)).is_err() {
                std::fs::copy(bins.dir.join(b), dir.join(b)).unwrap();
            }
        }
    }
    std::fs::write(&cfg_path, config).unwrap();
    for phase in [
        &["certs", "all"][..],
        &["kubeconfig", "all"],
        &["etcd", "local"],
        &["control-plane", "all"],
    ] {
        let args = [&["init", "phase"][..], phase, &["--config", &cfg_arg]].concat();
        let out = kubeadm(&root, &args);
        assert!(
            out.status.success(),
            "{phase:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut cp = if systemd {
        for b in BINARIES {
            assert!(
                !root
                    .join(format!("etc/kubernetes/manifests/{b}.yaml"))
                    .exists()
            );
        }
        RealControlPlane::start_units(&root, dir.path(), &BINARIES).unwrap()
    } else {
        RealControlPlane::start(&bins, &root, dir.path()).unwrap()
    };
    // From 1.29 admin.conf has no rights until init binds its group; super-admin.conf does.
    let super_admin = if kubeadm_api::version::minor_info(minor)
        .unwrap()
        .has_super_admin()
    {
        root.join("etc/kubernetes/super-admin.conf")
    } else {
        root.join("etc/kubernetes/admin.conf")
    };
    let kubectl_json = |args: &[&str]| -> Option<serde_json::Value> {
        let out = Process::new(&kubectl)
            .arg("--kubeconfig")
            .arg(&super_admin)
            .args(args)
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    };
    let up = cp
        .wait_until(Duration::from_secs(120), || {
            Process::new(&kubectl)
                .arg("--kubeconfig")
                .arg(&super_admin)
                .args(["get", "--raw", "/readyz"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .unwrap();
    assert!(
        up,
        "kube-apiserver not ready:\n{}",
        cp.log_tail("kube-apiserver")
    );
    // The kubelet would register the Node.
    let node = dir.path().join("node.json");
    std::fs::write(
        &node,
        r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"cp-1"}}"#,
    )
    .unwrap();
    let created = Process::new(&kubectl)
        .arg("--kubeconfig")
        .arg(&super_admin)
        .arg("create")
        .arg("-f")
        .arg(&node)
        .output()
        .unwrap();
    assert!(created.status.success(), "{:?}", created);
    std::fs::create_dir_all(root.join("var/lib/kubelet/pki")).unwrap();
    std::fs::write(
        root.join("var/lib/kubelet/pki/kubelet-client-current.pem"),
        "placeholder",
    )
    .unwrap();

    let init_args = [
        "init",
        "--config",
        &cfg_arg,
        "--ignore-preflight-errors",
        "all",
        "--upload-certs",
    ];
    let out = kubeadm(&root, &init_args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}\ncontroller-manager:\n{}\nscheduler:\n{}",
        String::from_utf8_lossy(&out.stderr),
        cp.log_tail("kube-controller-manager"),
        cp.log_tail("kube-scheduler")
    );
    if minor >= 33 {
        // Every component is checked by default from 1.33 (the version table's gate default).
        assert!(
            stdout.contains("[control-plane-check] kube-scheduler is healthy after"),
            "{stdout}"
        );
    }
    let get = |g: &str, r: &str, ns: &str, n: &str| {
        let kind = if g.is_empty() {
            r.to_string()
        } else {
            format!("{r}.{g}")
        };
        let mut args = vec!["get", kind.as_str(), n, "-o", "json"];
        if !ns.is_empty() {
            args.extend(["-n", ns]);
        }
        kubectl_json(&args)
    };
    check_cluster(&root, &format!("https://127.0.0.1:{api_port}"), minor, &get);

    // A second init converges.
    let before = owned_state(minor, &get);
    let out = kubeadm(&root, &init_args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        owned_state(minor, &get),
        before,
        "re-running init changed the cluster"
    );
    cp.check_running().unwrap();
}
