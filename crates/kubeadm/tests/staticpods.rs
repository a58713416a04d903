//! `kubeadm init phase etcd|control-plane|kubelet-start` end to end under a temp `--rootfs`:
//! files, modes, idempotence, dry-run, patches — and a real etcd started from our manifest.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use k8s_openapi::api::core::v1::Pod;
use kubeadm_testapi::support::peer;

const FILES: [&str; 6] = [
    "etc/kubernetes/manifests/etcd.yaml",
    "etc/kubernetes/manifests/kube-apiserver.yaml",
    "etc/kubernetes/manifests/kube-controller-manager.yaml",
    "etc/kubernetes/manifests/kube-scheduler.yaml",
    "var/lib/kubelet/config.yaml",
    "var/lib/kubelet/kubeadm-flags.env",
];

fn kubeadm(root: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("kubeadm")
        .unwrap()
        .arg("--rootfs")
        .arg(root)
        .args(args)
        .assert()
}

const FLAGS: [&str; 6] = [
    "--apiserver-advertise-address",
    "127.0.0.1",
    "--node-name",
    "node-1",
    "--kubernetes-version",
    "v1.31.0",
];

fn run_phases(root: &Path, extra: &[&str]) {
    for phase in [
        &["etcd", "local"][..],
        &["control-plane", "all"][..],
        &["kubelet-start"][..],
    ] {
        let mut args = vec!["init", "phase"];
        args.extend_from_slice(phase);
        args.extend_from_slice(&FLAGS);
        args.extend_from_slice(extra);
        kubeadm(root, &args).success();
    }
}

fn snapshot(root: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    FILES
        .iter()
        .map(|f| {
            let p = root.join(f);
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            (f.to_string(), (std::fs::read(&p).unwrap(), mode))
        })
        .collect()
}

#[test]
fn phases_write_every_file_with_its_mode_and_twice_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    run_phases(dir.path(), &[]);
    let first = snapshot(dir.path());
    for (f, (bytes, mode)) in &first {
        let want = if f.contains("manifests") {
            0o600
        } else {
            0o644
        };
        assert_eq!(*mode, want, "{f}");
        if f.ends_with(".yaml") && f.contains("manifests") {
            let pod: Pod = serde_saphyr::from_str(std::str::from_utf8(bytes).unwrap()).unwrap();
            assert_eq!(pod.metadata.namespace.as_deref(), Some("kube-system"));
        }
    }
    for private in [
        "var/lib/etcd",
        "var/lib/kubelet",
        "etc/kubernetes/manifests",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(private))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{private}");
    }
    run_phases(dir.path(), &[]);
    assert_eq!(first, snapshot(dir.path()));
    let env = String::from_utf8(first["var/lib/kubelet/kubeadm-flags.env"].0.clone()).unwrap();
    assert!(
        env.starts_with("KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint="),
        "{env}"
    );
}

#[test]
fn whole_init_warns_about_loopback_and_dry_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["init", "--dry-run"];
    args.extend_from_slice(&FLAGS);
    let out = kubeadm(dir.path(), &args)
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("loopback"), "{out}");
    assert!(
        out.contains("/etc/kubernetes/manifests/kube-apiserver.yaml"),
        "{out}"
    );
    assert!(out.contains("--advertise-address=127.0.0.1"), "{out}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "dry-run wrote something"
    );
}

#[test]
fn kubelet_start_restarts_the_kubelet_when_systemd_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("run/systemd/system")).unwrap();
    let mut args = vec!["init", "phase", "kubelet-start", "--dry-run"];
    args.extend_from_slice(&FLAGS);
    let out = String::from_utf8(
        kubeadm(dir.path(), &args)
            .success()
            .get_output()
            .stdout
            .clone(),
    )
    .unwrap();
    assert!(out.contains("systemctl restart kubelet"), "{out}");
    assert!(!dir.path().join("var").exists());
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn patches_apply_and_a_malformed_one_stops_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let patches = dir.path().join("patches");
    write(
        &patches.join("kube-apiserver+merge.yaml"),
        "metadata:\n  labels:\n    patched: \"yes\"\n",
    );
    write(
        &patches.join("kubeletconfiguration+json.json"),
        r#"[{"op": "add", "path": "/maxPods", "value": 42}]"#,
    );
    // Under --rootfs the patches directory is a host path too, resolved under the root.
    run_phases(dir.path(), &["--patches", "/patches"]);
    let api = std::fs::read_to_string(dir.path().join(FILES[1])).unwrap();
    assert!(api.contains("patched: \"yes\""), "{api}");
    let kc = std::fs::read_to_string(dir.path().join(FILES[4])).unwrap();
    assert!(kc.contains("maxPods: 42"), "{kc}");

    let fresh = tempfile::tempdir().unwrap();
    let bad = fresh.path().join("patches");
    write(&bad.join("kube-scheduler.yaml"), "spec: [oops\n");
    let mut args = vec![
        "init",
        "phase",
        "control-plane",
        "all",
        "--patches",
        "/patches",
    ];
    args.extend_from_slice(&FLAGS);
    let err = String::from_utf8(
        kubeadm(fresh.path(), &args)
            .failure()
            .get_output()
            .stderr
            .clone(),
    )
    .unwrap();
    assert!(err.contains("kube-scheduler.yaml"), "{err}");
    assert!(err.contains("/patches/kube-scheduler.yaml"), "{err}");
    assert!(!fresh.path().join("etc").exists(), "something was written");

    // The whole `init` checks the patches before its first phase.
    let mut args = vec!["init", "--patches", "/patches"];
    args.extend_from_slice(&FLAGS);
    let err = String::from_utf8(
        kubeadm(fresh.path(), &args)
            .failure()
            .get_output()
            .stderr
            .clone(),
    )
    .unwrap();
    assert!(err.contains("/patches/kube-scheduler.yaml"), "{err}");
    let entries: Vec<_> = std::fs::read_dir(fresh.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["patches"], "something was written");
}

// ---- real etcd ------------------------------------------------------------------------------

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct KillOnDrop(Child, &'static str);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = StdCommand::new("openssl")
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

/// An etcd CA and the server, peer and healthcheck-client certificates kubeadm would make.
fn etcd_pki(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "1",
            "-subj",
            "/CN=etcd-ca",
        ],
    );
    let sans = "subjectAltName=DNS:node-1,DNS:localhost,IP:127.0.0.1,IP:::1";
    for (name, cn, eku, san) in [
        ("server", "node-1", "serverAuth,clientAuth", Some(sans)),
        ("peer", "node-1", "serverAuth,clientAuth", Some(sans)),
        (
            "healthcheck-client",
            "kube-etcd-healthcheck-client",
            "clientAuth",
            None,
        ),
    ] {
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
                &format!("/CN={cn}"),
            ],
        );
        let mut ext =
            format!("keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage={eku}\n");
        if let Some(s) = san {
            ext.push_str(s);
            ext.push('\n');
        }
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
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
}

/// A plain HTTP GET on loopback; returns the body.
fn http_get(host: &str, port: i32, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(
        &format!("{host}:{port}").parse().ok()?,
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// A Pod's container command with every absolute path moved under `root`.
fn rooted_command(pod: &Pod, root: &Path) -> Vec<String> {
    let cmd = pod.spec.as_ref().unwrap().containers[0]
        .command
        .clone()
        .unwrap();
    cmd.into_iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if v.starts_with('/') => format!("{k}={}{v}", root.display()),
            _ => a,
        })
        .collect()
}

#[test]
fn real_etcd_runs_from_our_manifest() {
    real_etcd("v1.31.0", true);
}

/// The oldest supported minor's etcd flags (no corrupt check, no watch-progress flag) run too.
#[test]
fn real_etcd_runs_from_our_v1_24_manifest() {
    real_etcd("v1.24.17", false);
}

/// Starts etcd from the command line of our etcd.yaml for `version` and checks it serves;
/// `control_plane` also writes (and, with binaries, starts) the rest of the control plane.
fn real_etcd(version: &str, control_plane: bool) {
    let Some(etcd_bin) = peer("etcd", Some("KUBEADM_TEST_ETCD")) else {
        eprintln!(
            "skipping real_etcd_runs_from_our_manifest: etcd not found (set KUBEADM_TEST_ETCD or put etcd on PATH)"
        );
        return;
    };
    if peer("openssl", Some("KUBEADM_TEST_OPENSSL")).is_none() {
        eprintln!("skipping real_etcd_runs_from_our_manifest: openssl not on PATH");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    etcd_pki(&root.join("etc/kubernetes/pki/etcd"));
    let (client, peer_port, metrics) = (free_port(), free_port(), free_port());
    let (api, cm, sched) = (free_port(), free_port(), free_port());
    let config = format!(
        r#"apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 127.0.0.1
  bindPort: {api}
nodeRegistration:
  name: node-1
  criSocket: unix:///var/run/containerd/containerd.sock
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: {version}
apiServer:
  extraArgs:
  - {{name: etcd-servers, value: "https://127.0.0.1:{client}"}}
controllerManager:
  extraArgs:
  - {{name: secure-port, value: "{cm}"}}
scheduler:
  extraArgs:
  - {{name: secure-port, value: "{sched}"}}
etcd:
  local:
    extraArgs:
    - {{name: listen-client-urls, value: "https://127.0.0.1:{client}"}}
    - {{name: advertise-client-urls, value: "https://127.0.0.1:{client}"}}
    - {{name: listen-peer-urls, value: "https://127.0.0.1:{peer_port}"}}
    - {{name: initial-advertise-peer-urls, value: "https://127.0.0.1:{peer_port}"}}
    - {{name: initial-cluster, value: "node-1=https://127.0.0.1:{peer_port}"}}
    - {{name: listen-metrics-urls, value: "http://127.0.0.1:{metrics}"}}
"#
    );
    let cfg_path = root.join("kubeadm.yaml");
    std::fs::write(&cfg_path, config).unwrap();
    kubeadm(
        root,
        &[
            "init",
            "phase",
            "etcd",
            "local",
            "--config",
            cfg_path.to_str().unwrap(),
        ],
    )
    .success();
    let yaml = std::fs::read_to_string(root.join(FILES[0])).unwrap();
    let pod: Pod = serde_saphyr::from_str(&yaml).unwrap();
    let cmd = rooted_command(&pod, root);
    assert_eq!(cmd[0], "etcd");
    let log = std::fs::File::create(root.join("etcd.log")).unwrap();
    let child = StdCommand::new(&etcd_bin)
        .args(&cmd[1..])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut guard = KillOnDrop(child, "etcd");

    // Liveness exactly as the kubelet would probe it, from the manifest's probe.
    let probe = pod.spec.as_ref().unwrap().containers[0]
        .liveness_probe
        .clone()
        .unwrap()
        .http_get
        .unwrap();
    let port = match probe.port {
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(p) => p,
        other => panic!("unexpected probe port {other:?}"),
    };
    assert_eq!(port, i32::from(metrics));
    let host = probe.host.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let pki = root.join("etc/kubernetes/pki/etcd");
    loop {
        if let Ok(Some(status)) = guard.0.try_wait() {
            panic!(
                "etcd exited with {status}: {}",
                std::fs::read_to_string(root.join("etcd.log")).unwrap_or_default()
            );
        }
        let live = http_get(&host, port, probe.path.as_deref().unwrap())
            .is_some_and(|b| b.contains("\"health\":\"true\""));
        let health = http_get("127.0.0.1", port, "/health")
            .is_some_and(|b| b.contains("\"health\":\"true\""));
        if live && health {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "etcd did not become healthy in 30 s: {}",
            std::fs::read_to_string(root.join("etcd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The client URL serves TLS with our server certificate and accepts our client certificate.
    let etcdctl = etcd_bin.with_file_name("etcdctl");
    if !etcdctl.is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "etcdctl not found next to {}",
            etcd_bin.display()
        );
        eprintln!(
            "etcdctl not found next to {}: client URL check skipped",
            etcd_bin.display()
        );
    } else {
        let out = StdCommand::new(etcdctl)
            .env("ETCDCTL_API", "3")
            .args([
                &format!("--endpoints=https://127.0.0.1:{client}"),
                &format!("--cacert={}", pki.join("ca.crt").display()),
                &format!("--cert={}", pki.join("healthcheck-client.crt").display()),
                &format!("--key={}", pki.join("healthcheck-client.key").display()),
                "--dial-timeout=10s",
                "endpoint",
                "health",
            ])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.contains("is healthy"),
            "etcdctl: {text}"
        );
    }
    if control_plane {
        control_plane_from_manifests(root, &cfg_path, [api, cm, sched]);
    }
}

/// Signs `name.crt`/`name.key` (relative to `dir`) with the CA `ca` (`ca.crt`/`ca.key`).
fn sign(dir: &Path, ca: &str, name: &str, subj: &str, eku: &str, san: Option<&str>) {
    let (key, csr, crt, ext) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("{name}.ext"),
    );
    openssl(
        dir,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subj,
        ],
    );
    let mut text =
        format!("keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage={eku}\n");
    if let Some(s) = san {
        text.push_str(&format!("subjectAltName={s}\n"));
    }
    std::fs::write(dir.join(&ext), text).unwrap();
    let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "1",
            "-extfile",
            &ext,
        ],
    );
}

fn self_signed_ca(dir: &Path, name: &str, cn: &str) {
    let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
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
            &format!("/CN={cn}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,digitalSignature,keyEncipherment",
        ],
    );
}

fn base64_file(path: &Path) -> String {
    let out = StdCommand::new("openssl")
        .args(["base64", "-A", "-in"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The rest of the PKI and the two component kubeconfigs kubeadm's certs and kubeconfig phases
/// would make (built with openssl here, independently of our own PKI code).
fn control_plane_pki(root: &Path, api_port: u16) {
    let pki = root.join("etc/kubernetes/pki");
    self_signed_ca(&pki, "ca", "kubernetes");
    self_signed_ca(&pki, "front-proxy-ca", "front-proxy-ca");
    let sans = "DNS:node-1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1,IP:127.0.0.1";
    sign(
        &pki,
        "ca",
        "apiserver",
        "/CN=kube-apiserver",
        "serverAuth",
        Some(sans),
    );
    sign(
        &pki,
        "ca",
        "apiserver-kubelet-client",
        "/O=kubeadm:cluster-admins/CN=kube-apiserver-kubelet-client",
        "clientAuth",
        None,
    );
    sign(
        &pki,
        "front-proxy-ca",
        "front-proxy-client",
        "/CN=front-proxy-client",
        "clientAuth",
        None,
    );
    sign(
        &pki,
        "etcd/ca",
        "apiserver-etcd-client",
        "/CN=kube-apiserver-etcd-client",
        "clientAuth",
        None,
    );
    openssl(&pki, &["genrsa", "-out", "sa.key", "2048"]);
    openssl(&pki, &["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);
    for (file, cn) in [
        ("controller-manager", "system:kube-controller-manager"),
        ("scheduler", "system:kube-scheduler"),
    ] {
        sign(&pki, "ca", file, &format!("/CN={cn}"), "clientAuth", None);
        let conf = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: https://127.0.0.1:{api_port}\n  name: kubernetes\ncontexts:\n- context:\n    cluster: kubernetes\n    user: {cn}\n  name: {cn}@kubernetes\ncurrent-context: {cn}@kubernetes\nusers:\n- name: {cn}\n  user:\n    client-certificate-data: {crt}\n    client-key-data: {key}\n",
            ca = base64_file(&pki.join("ca.crt")),
            crt = base64_file(&pki.join(format!("{file}.crt"))),
            key = base64_file(&pki.join(format!("{file}.key"))),
        );
        std::fs::write(root.join(format!("etc/kubernetes/{file}.conf")), conf).unwrap();
    }
}

/// `curl -sk URL` answers `ok` within `secs` seconds (while `child` keeps running).
fn wait_ok(url: &str, child: &mut KillOnDrop, log: &Path, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!(
                "{} exited with {status}: {}",
                child.1,
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        let out = StdCommand::new("curl")
            .args(["-sk", "--max-time", "3", url])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).trim() == "ok" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not answer ok within {secs} s: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Writes the control-plane manifests from the same configuration and checks their probes;
/// with `KUBEADM_TEST_BIN_DIR` holding the binaries, also starts kube-apiserver,
/// kube-controller-manager and kube-scheduler from the manifests' command lines and waits for
/// `/readyz` and `/healthz`.
fn control_plane_from_manifests(root: &Path, cfg: &Path, ports: [u16; 3]) {
    kubeadm(
        root,
        &[
            "init",
            "phase",
            "control-plane",
            "all",
            "--config",
            cfg.to_str().unwrap(),
        ],
    )
    .success();
    let components = [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ];
    let mut pods = Vec::new();
    for (name, port) in components.iter().zip(ports) {
        let yaml =
            std::fs::read_to_string(root.join(format!("etc/kubernetes/manifests/{name}.yaml")))
                .unwrap();
        let pod: Pod = serde_saphyr::from_str(&yaml).unwrap();
        let c = &pod.spec.as_ref().unwrap().containers[0];
        let probe = c
            .liveness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(
            probe.port,
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i32::from(port)),
            "{name}"
        );
        pods.push(pod);
    }
    let Some(bin_dir) = std::env::var_os("KUBEADM_TEST_BIN_DIR").map(PathBuf::from) else {
        eprintln!(
            "skipping kube-apiserver/kube-controller-manager/kube-scheduler: KUBEADM_TEST_BIN_DIR is not set (it must hold those binaries)"
        );
        return;
    };
    if let Some(missing) = components.iter().find(|c| !bin_dir.join(c).is_file()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "KUBEADM_TEST_BIN_DIR={} has no {missing}",
            bin_dir.display()
        );
        eprintln!(
            "skipping the control plane: {} has no {missing}",
            bin_dir.display()
        );
        return;
    }
    control_plane_pki(root, ports[0]);
    let mut running = Vec::new();
    for ((name, pod), port) in components.iter().zip(&pods).zip(ports) {
        let cmd = rooted_command(pod, root);
        let log = root.join(format!("{name}.log"));
        let child = StdCommand::new(bin_dir.join(name))
            .args(&cmd[1..])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut guard = KillOnDrop(child, name);
        let path = if *name == "kube-apiserver" {
            "readyz"
        } else {
            "healthz"
        };
        wait_ok(
            &format!("https://127.0.0.1:{port}/{path}"),
            &mut guard,
            &log,
            90,
        );
        running.push(guard);
    }
    wait_ok(
        &format!("https://127.0.0.1:{}/healthz", ports[0]),
        &mut running[0],
        &root.join("kube-apiserver.log"),
        30,
    );
}

#[test]
fn kubelet_start_with_systemd_uses_systemctl_and_resolved() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("run/systemd/system")).unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.path().join("systemctl.log");
    let script = format!("#!/bin/sh\necho \"$*\" >> {}\nexit 0\n", log.display());
    std::fs::write(bin.join("systemctl"), script).unwrap();
    std::fs::set_permissions(
        bin.join("systemctl"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut args = vec!["init", "phase", "kubelet-start"];
    args.extend_from_slice(&FLAGS);
    Command::cargo_bin("kubeadm")
        .unwrap()
        .env("PATH", path)
        .arg("--rootfs")
        .arg(&root)
        .args(&args)
        .assert()
        .success();
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        [
            "is-active systemd-resolved",
            "stop kubelet",
            "daemon-reload",
            "restart kubelet"
        ]
    );
    let config = std::fs::read_to_string(root.join(FILES[4])).unwrap();
    assert!(
        config.contains("resolvConf: /run/systemd/resolve/resolv.conf"),
        "{config}"
    );
}

#[test]
fn node_local_cri_socket_moves_the_endpoint_into_instance_config() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["init", "phase", "kubelet-start", "--node-name", "node-1"];
    args.extend_from_slice(&["--apiserver-advertise-address", "127.0.0.1"]);
    args.extend_from_slice(&["--kubernetes-version", "v1.37.0"]);
    args.extend_from_slice(&["--cri-socket", "unix:///run/containerd/containerd.sock"]);
    kubeadm(dir.path(), &args).success();
    let lib = dir.path().join("var/lib/kubelet");
    let instance = std::fs::read_to_string(lib.join("instance-config.yaml")).unwrap();
    assert_eq!(
        instance,
        "containerRuntimeEndpoint: \"unix:///run/containerd/containerd.sock\"\n"
    );
    let env = std::fs::read_to_string(lib.join("kubeadm-flags.env")).unwrap();
    assert!(!env.contains("container-runtime-endpoint"), "{env}");
    let config = std::fs::read_to_string(lib.join("config.yaml")).unwrap();
    assert!(
        config.contains("containerRuntimeEndpoint: unix:///run/containerd/containerd.sock"),
        "{config}"
    );
}
