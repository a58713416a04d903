//! `kubeadm ha render` against the real daemons' own checkers: Debian's keepalived (`-t`, which
//! also checks the interface exists) and haproxy (`-c`) accept what we render for a node of a
//! three-node control plane, in a network namespace of the test's own with the node's address
//! on a veth; bad documents are refused with the field named and nothing printed as files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kubeadm_testapi::support::{kubeadm_bin, peer};

/// A network namespace holding one veth end with `address`/24, removed when dropped.
struct Netns {
    name: String,
}

impl Netns {
    fn new(address: &str) -> Option<Netns> {
        let name = format!("kadm-ha-{}", std::process::id());
        let ip = |args: &[&str]| {
            Command::new("ip").args(args).output().map(|o| {
                (
                    o.status.success(),
                    String::from_utf8_lossy(&o.stderr).into_owned(),
                )
            })
        };
        match ip(&["netns", "add", &name]) {
            Ok((true, _)) => {}
            other => {
                let why = format!("cannot make a network namespace (`ip netns add`): {other:?}");
                if std::env::var_os("CI").is_some() {
                    panic!("{why}; CI runs as root and must run this test");
                }
                eprintln!("skipping: {why}");
                return None;
            }
        }
        let ns = Netns { name };
        for args in [
            vec![
                "-n", &ns.name, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0",
            ],
            vec!["-n", &ns.name, "link", "set", "eth0", "up"],
            vec!["-n", &ns.name, "link", "set", "peer0", "up"],
            vec![
                "-n",
                &ns.name,
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                "eth0",
            ],
        ] {
            let (ok, err) = ip(&args).unwrap();
            assert!(ok, "ip {}: {err}", args.join(" "));
        }
        Some(ns)
    }

    fn exec(&self, program: &Path, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .arg(program)
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The `# <path>` sections of `ha render`'s output.
fn sections(stdout: &str) -> Vec<(String, String)> {
    stdout
        .split("\n---\n")
        .filter_map(|part| {
            let part = part.trim_start_matches('\n');
            let (head, body) = part.split_once('\n')?;
            let path = head.strip_prefix("# /")?;
            Some((format!("/{path}"), format!("{body}\n")))
        })
        .collect()
}

const NODES: &str = "controlPlaneNodes:\n- {name: cp-1, address: 10.23.0.11}\n- {name: cp-2, address: 10.23.0.12}\n- {name: cp-3, address: 10.23.0.13}\n";

fn config(dir: &Path, name: &str, ha: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint: {{advertiseAddress: 10.23.0.11}}\nnodeRegistration: {{name: cp-1}}\n---\napiVersion: kubeadm-rs.io/v1alpha1\nkind: HighAvailabilityConfiguration\n{ha}"
        ),
    )
    .unwrap();
    path
}

/// Writes the rendered files into `dir` (the check script where keepalived.conf names it) and
/// runs both checkers on them.
fn check_with_daemons(
    ns: &Netns,
    dir: &Path,
    files: &[(String, String)],
    keepalived: &Path,
    haproxy: &Path,
) {
    let get = |path: &str| {
        files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| panic!("{path} not rendered: {files:?}"))
    };
    let script = dir.join("check_apiserver.sh");
    std::fs::write(&script, get("/etc/kubernetes/ha/check_apiserver.sh")).unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&script).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let conf = dir.join("keepalived.conf");
    std::fs::write(
        &conf,
        get("/etc/kubernetes/ha/keepalived.conf").replace(
            "/etc/kubernetes/ha/check_apiserver.sh",
            &script.display().to_string(),
        ),
    )
    .unwrap();
    // -t exits non-zero on any warning, an unknown interface included; run where eth0 exists.
    let o = ns.exec(keepalived, &["-t", "-l", "-f", &conf.display().to_string()]);
    assert!(
        o.status.success(),
        "keepalived -t refused:\n{}\n{}",
        text(&o),
        std::fs::read_to_string(&conf).unwrap()
    );
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(&cfg, get("/etc/kubernetes/ha/haproxy.cfg")).unwrap();
    let o = Command::new(haproxy)
        .args(["-c", "-f", &cfg.display().to_string()])
        .output()
        .unwrap();
    assert!(o.status.success(), "haproxy -c refused:\n{}", text(&o));
}

#[test]
fn rendered_configs_pass_keepalived_and_haproxy_checks() {
    let (Some(keepalived), Some(haproxy)) = (peer("keepalived", None), peer("haproxy", None))
    else {
        return;
    };
    let Some(ns) = Netns::new("10.23.0.11") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let render = |cfg: &Path| {
        ns.exec(
            &kubeadm_bin(),
            &["ha", "render", "--config", &cfg.display().to_string()],
        )
    };

    // VRRPv3 (the default): sub-second adverts, unicast to the two other nodes.
    let cfg = config(
        dir.path(),
        "v3.yaml",
        &format!("virtualIP: 10.23.0.100\n{NODES}"),
    );
    let o = render(&cfg);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let files = sections(&stdout);
    let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/etc/kubernetes/ha/haproxy.cfg",
            "/etc/kubernetes/ha/keepalived.conf",
            "/etc/kubernetes/ha/check_apiserver.sh",
            "/etc/kubernetes/manifests/haproxy.yaml",
            "/etc/kubernetes/manifests/keepalived.yaml",
        ]
    );
    let conf = &files[1].1;
    for want in [
        "interface eth0",
        "advert_int 0.5",
        "vrrp_version 3",
        "unicast_src_ip 10.23.0.11",
        "        10.23.0.12\n        10.23.0.13\n",
        "10.23.0.100/24 dev eth0",
    ] {
        assert!(conf.contains(want), "{want:?} missing in:\n{conf}");
    }
    assert!(
        !conf.contains("        10.23.0.11\n"),
        "a node is its own peer:\n{conf}"
    );
    for want in [
        "bind :::8443 v4v6",
        "server cp-1 10.23.0.11:6443",
        "server cp-3 10.23.0.13:6443",
        "option httpchk GET /readyz",
    ] {
        assert!(
            files[0].1.contains(want),
            "{want:?} missing in:\n{}",
            files[0].1
        );
    }
    for (path, manifest) in &files[3..] {
        let pod: serde_json::Value = serde_saphyr::from_str(manifest).unwrap();
        assert_eq!(pod["spec"]["hostNetwork"], true, "{path}");
    }
    check_with_daemons(&ns, dir.path(), &files, &keepalived, &haproxy);

    // VRRPv2 with whole-second adverts and a generated PASS password.
    let cfg = config(
        dir.path(),
        "v2.yaml",
        &format!("virtualIP: 10.23.0.100\nvrrpVersion: 2\nvirtualRouterID: 77\n{NODES}"),
    );
    let o = render(&cfg);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("authPassword was empty: generated"),
        "{}",
        text(&o)
    );
    let files = sections(&stdout);
    let conf = &files[1].1;
    for want in ["auth_type PASS", "advert_int 1\n", "virtual_router_id 77"] {
        assert!(conf.contains(want), "{want:?} missing in:\n{conf}");
    }
    check_with_daemons(&ns, dir.path(), &files, &keepalived, &haproxy);

    // haproxy-local: no VIP, haproxy on the loopback only.
    let cfg = config(
        dir.path(),
        "local.yaml",
        &format!("mode: haproxy-local\n{NODES}"),
    );
    let o = render(&cfg);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let files = sections(&stdout);
    assert_eq!(files.len(), 2, "{stdout}");
    assert!(files[0].1.contains("bind 127.0.0.1:8443"), "{}", files[0].1);

    // Bad documents: the field is named, exit non-zero, no file printed.
    for (name, ha, want) in [
        (
            "outside.yaml",
            format!("virtualIP: 10.24.0.100\n{NODES}"),
            "virtualIP: Invalid value: 10.24.0.100: not inside 10.23.0.11/24 of interface eth0",
        ),
        (
            "node.yaml",
            format!("virtualIP: 10.23.0.12\n{NODES}"),
            "controlPlaneNodes[1].address: Invalid value: \"10.23.0.12\": equals virtualIP",
        ),
        (
            "router.yaml",
            format!("virtualIP: 10.23.0.100\nvirtualRouterID: 300\n{NODES}"),
            "virtualRouterID: Invalid value: 300: must be between 1 and 255",
        ),
        (
            "dup.yaml",
            format!("virtualIP: 10.23.0.100\n{NODES}- {{name: cp-4, address: 10.23.0.12}}\n"),
            "controlPlaneNodes[3].address: Duplicate value: 10.23.0.12:6443",
        ),
        (
            "unknown.yaml",
            "virtualIP: 10.23.0.100\nvip: 1.2.3.4\n".to_string(),
            "vip",
        ),
        (
            "nothing.yaml",
            "mode: keepalived+haproxy\n".to_string(),
            "virtualIP: Required value",
        ),
    ] {
        let cfg = config(dir.path(), name, &ha);
        let o = render(&cfg);
        assert!(!o.status.success(), "{name} accepted: {}", text(&o));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains(want),
            "{name}: {want:?} missing in:\n{}",
            text(&o)
        );
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains("# /etc/"),
            "{name}: files printed:\n{}",
            text(&o)
        );
    }
}
