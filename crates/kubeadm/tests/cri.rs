//! The container runtime for real: containerd (Debian's, started here with its own root, state,
//! socket and config under a temp dir, CRI plugin on) and a registry (Debian's
//! `docker-registry` on 127.0.0.1) holding images this test builds (a tiny static x86-64
//! binary that pauses, one layer, one image per name of `config images list`, pushed with
//! `skopeo`). Checks `config images pull` (all, then nothing; policies; errors), export →
//! a fresh containerd → import with the registry gone, and reset's removal of Pod sandboxes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use kubeadm_cri::proto::{
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, NamespaceOption, PodSandboxConfig,
    PodSandboxMetadata, namespace_mode,
};
use kubeadm_cri::{CriClient, Runtime};
use kubeadm_testapi::support::{kubeadm, peer};

/// The version whose images the test pushes.
const VERSION: &str = "v1.33.0";
/// The CRI socket, a host path under each node's `--rootfs`.
const SOCKET: &str = "/run/containerd/containerd.sock";

fn cri_socket() -> String {
    format!("unix://{SOCKET}")
}

/// The peers this test needs, or `None` (after saying why) outside CI.
struct Peers {
    containerd: PathBuf,
    registry: PathBuf,
    skopeo: PathBuf,
    ctr: PathBuf,
}

fn peers() -> Option<Peers> {
    if std::env::consts::ARCH != "x86_64" {
        eprintln!("skipping: the test image's binary is x86-64 machine code");
        return None;
    }
    let containerd = peer("containerd", Some("KUBEADM_TEST_CONTAINERD"));
    let registry = peer("docker-registry", Some("KUBEADM_TEST_REGISTRY"));
    let skopeo = peer("skopeo", Some("KUBEADM_TEST_SKOPEO"));
    let ctr = peer("ctr", None);
    let _runc = peer("runc", None)?;
    Some(Peers {
        containerd: containerd?,
        registry: registry?,
        skopeo: skopeo?,
        ctr: ctr?,
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process killed on drop.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(program: &Path, args: &[&str], log: &Path) -> Daemon {
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("{} does not start: {e}", program.display()));
    Daemon {
        child,
        log: log.to_path_buf(),
    }
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// docker-registry on 127.0.0.1 at a port from the OS.
struct Registry {
    daemon: Option<Daemon>,
    port: u16,
}

impl Registry {
    fn start(bin: &Path, dir: &Path) -> Registry {
        for _ in 0..5 {
            let port = free_port();
            let config = dir.join("registry.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                    dir.join("data").display()
                ),
            )
            .unwrap();
            let mut d = spawn(
                bin,
                &["serve", &config.display().to_string()],
                &dir.join("registry.log"),
            );
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = d.child.try_wait() {
                    break; // the port was taken meanwhile: try another
                }
                if http_get(port, "/v2/").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
                    return Registry {
                        daemon: Some(d),
                        port,
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            eprintln!("registry on {port} did not come up: {}", d.log());
        }
        panic!("docker-registry did not start");
    }

    fn repository(&self) -> String {
        format!("127.0.0.1:{}/k8s", self.port)
    }

    fn stop(&mut self) {
        self.daemon = None;
    }
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// containerd with everything under `dir`, its socket at [`SOCKET`] under `root`.
struct Containerd {
    daemon: Daemon,
    socket: PathBuf,
}

impl Containerd {
    fn start(bin: &Path, dir: &Path, root: &Path, sandbox_image: &str) -> Containerd {
        let socket = root.join(SOCKET.trim_start_matches('/'));
        std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
        for d in ["cni/bin", "cni/conf"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let config = dir.join("containerd.toml");
        // restrict_oom_score_adj: lowering oom_score_adj is denied in these sandboxes; the
        // native snapshotter needs no overlay mount; no CNI config is needed for host-network
        // sandboxes.
        std::fs::write(
            &config,
            format!(
                r#"version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{s}"
[ttrpc]
  address = "{s}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  disable_apparmor = true
  sandbox_image = "{sandbox_image}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni/bin"
    conf_dir = "{d}/cni/conf"
"#,
                d = dir.display(),
                s = socket.display()
            ),
        )
        .unwrap();
        let daemon = spawn(
            bin,
            &["--config", &config.display().to_string()],
            &dir.join("containerd.log"),
        );
        let c = Containerd { daemon, socket };
        wait_for(
            "containerd's CRI answering",
            Duration::from_secs(30),
            || c.client_opt().is_some(),
        );
        c
    }

    fn client_opt(&self) -> Option<CriClient> {
        CriClient::connect(&format!("unix://{}", self.socket.display()), &self.socket).ok()
    }

    fn client(&self) -> CriClient {
        self.client_opt()
            .unwrap_or_else(|| panic!("containerd's CRI: {}", self.daemon.log()))
    }

    fn image_tags(&self) -> Vec<String> {
        let mut tags: Vec<String> = self
            .client()
            .list_images()
            .unwrap()
            .into_iter()
            .flat_map(|i| i.repo_tags)
            .collect();
        tags.sort();
        tags
    }
}

fn sha256_hex(data: &[u8]) -> String {
    digest::digest(&digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A static x86-64 ELF executable that calls pause(2) forever: the sandbox's process.
fn pause_binary() -> Vec<u8> {
    let code: [u8; 9] = [
        0xb8, 0x22, 0, 0, 0, // mov eax, 34 (pause)
        0x0f, 0x05, // syscall
        0xeb, 0xf7, // jmp back to mov
    ];
    let total = (64 + 56 + code.len()) as u64;
    let base = 0x40_0000u64;
    let mut e = Vec::new();
    e.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&0x3eu16.to_le_bytes()); // x86-64
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&(base + 120).to_le_bytes()); // entry
    e.extend_from_slice(&64u64.to_le_bytes()); // program headers
    e.extend_from_slice(&0u64.to_le_bytes()); // no sections
    e.extend_from_slice(&0u32.to_le_bytes());
    for v in [64u16, 56, 1, 0, 0, 0] {
        e.extend_from_slice(&v.to_le_bytes());
    }
    e.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    e.extend_from_slice(&5u32.to_le_bytes()); // R+X
    for v in [0u64, base, base, total, total, 0x1000] {
        e.extend_from_slice(&v.to_le_bytes());
    }
    e.extend_from_slice(&code);
    assert_eq!(e.len() as u64, total);
    e
}

/// An OCI image layout under `dir` for `name`: one uncompressed layer holding `/pause` and a
/// file naming the image (so every image has its own layer and digests).
fn build_image(dir: &Path, name: &str) {
    let mut layer = tar::Builder::new(Vec::new());
    for (path, data, mode) in [
        ("pause", pause_binary(), 0o755),
        ("image-name", name.as_bytes().to_vec(), 0o644),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_cksum();
        layer.append_data(&mut h, path, data.as_slice()).unwrap();
    }
    let layer = layer.into_inner().unwrap();
    let layer_digest = sha256_hex(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/pause"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", sha256_hex(&config)), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{layer_digest}"), "size": layer.len()}],
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{}", sha256_hex(&manifest)), "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "latest"}}],
    }))
    .unwrap();
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    for b in [&layer, &config, &manifest] {
        std::fs::write(blobs.join(sha256_hex(b)), b).unwrap();
    }
    std::fs::write(dir.join("index.json"), index).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// Builds and pushes one image per reference.
fn push_images(skopeo: &Path, work: &Path, images: &[String]) {
    for (n, image) in images.iter().enumerate() {
        let dir = work.join(format!("image-{n}"));
        build_image(&dir, image);
        let out = Command::new(skopeo)
            .args([
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                &format!("oci:{}:latest", dir.display()),
                &format!("docker://{image}"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo copy {image}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn text(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn list_images(root: &Path, repo: &str) -> Vec<String> {
    let o = kubeadm(
        root,
        &[
            "config",
            "images",
            "list",
            "--image-repository",
            repo,
            "--kubernetes-version",
            VERSION,
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn images_cmd(root: &Path, verb: &str, repo: &str, extra: &[&str]) -> std::process::Output {
    let socket = cri_socket();
    let mut args = vec![
        "config",
        "images",
        verb,
        "--image-repository",
        repo,
        "--kubernetes-version",
        VERSION,
        "--cri-socket",
        &socket,
    ];
    args.extend_from_slice(extra);
    kubeadm(root, &args)
}

fn count(o: &std::process::Output, needle: &str) -> usize {
    String::from_utf8_lossy(&o.stdout).matches(needle).count()
}

#[test]
fn pull_all_then_nothing_then_export_and_import_on_an_offline_runtime() {
    let Some(p) = peers() else { return };
    let tmp = tempfile::Builder::new()
        .prefix("cri")
        .tempdir_in("/tmp")
        .unwrap();
    let t = tmp.path();
    let reg_dir = t.join("reg");
    std::fs::create_dir_all(&reg_dir).unwrap();
    let mut registry = Registry::start(&p.registry, &reg_dir);
    let repo = registry.repository();
    let root_a = t.join("a");
    std::fs::create_dir_all(&root_a).unwrap();
    let images = list_images(&root_a, &repo);
    assert_eq!(images.len(), 7, "{images:?}");
    push_images(&p.skopeo, t, &images);
    let pause = images
        .iter()
        .find(|i| i.contains("/pause:"))
        .unwrap()
        .clone();
    // This runtime's sandbox image is not kubeadm's pause image: preflight warns about it.
    let a = Containerd::start(
        &p.containerd,
        &t.join("ca"),
        &root_a,
        "registry.k8s.io/pause:3.6",
    );
    assert!(a.image_tags().is_empty());

    // A dry run reads the runtime and says what it would pull; nothing arrives.
    let o = images_cmd(&root_a, "pull", &repo, &["--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(count(&o, "[dryrun] Would pull image"), 7, "{}", text(&o));
    assert!(a.image_tags().is_empty());

    // Everything is pulled (serial by default), then nothing (IfNotPresent).
    let o = images_cmd(&root_a, "pull", &repo, &[]);
    assert!(o.status.success(), "{}", text(&o));
    for i in &images {
        assert!(
            String::from_utf8_lossy(&o.stdout).contains(&format!("[config/images] Pulled {i}\n")),
            "{i}: {}",
            text(&o)
        );
    }
    let mut want = images.clone();
    want.sort();
    assert_eq!(a.image_tags(), want);
    let o = images_cmd(&root_a, "pull", &repo, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(count(&o, "Pulled"), 0, "{}", text(&o));
    assert_eq!(
        count(&o, "[config/images] Image is present:"),
        7,
        "{}",
        text(&o)
    );

    // imagePullPolicy Always with parallel pulls (imagePullSerial: false) pulls all again.
    let cfg = t.join("always.yaml");
    std::fs::write(
        &cfg,
        format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nnodeRegistration:\n  criSocket: {}\n  imagePullPolicy: Always\n  imagePullSerial: false\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: {VERSION}\nimageRepository: {repo}\n",
            cri_socket()
        ),
    )
    .unwrap();
    let o = kubeadm(
        &root_a,
        &[
            "config",
            "images",
            "pull",
            "--config",
            &cfg.display().to_string(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(count(&o, "[config/images] Pulled "), 7, "{}", text(&o));

    // init's preflight pulls what a fresh runtime lacks (upstream's ImagePull check), through
    // the same code as `config images pull`.
    let root_c = t.join("c");
    std::fs::create_dir_all(&root_c).unwrap();
    let c = Containerd::start(&p.containerd, &t.join("cc"), &root_c, &pause);
    let preflight_cfg = t.join("preflight.yaml");
    let write_preflight_cfg = |policy: &str| {
        std::fs::write(
            &preflight_cfg,
            format!(
                "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nnodeRegistration:\n  criSocket: {}\n  imagePullPolicy: {policy}\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: {VERSION}\nimageRepository: {repo}\n",
                cri_socket()
            ),
        )
        .unwrap();
    };
    let preflight = |root: &Path| {
        kubeadm(
            root,
            &[
                "init",
                "phase",
                "preflight",
                "--config",
                &preflight_cfg.display().to_string(),
                "--ignore-preflight-errors",
                "all",
            ],
        )
    };
    write_preflight_cfg("IfNotPresent");
    let o = preflight(&root_c);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("[preflight] Pulling images required for setting up a Kubernetes cluster"),
        "{}",
        text(&o)
    );
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("ImagePull"),
        "{}",
        text(&o)
    );
    assert_eq!(c.image_tags(), want);
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("sandbox image"),
        "{}",
        text(&o)
    );
    drop(c);
    // A runtime whose sandbox image differs from kubeadm's pause image: a warning naming both.
    let o = preflight(&root_a);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!(
            "[WARNING ImagePull]: detected that the sandbox image \"registry.k8s.io/pause:3.6\" of the container runtime is inconsistent with that used by kubeadm. It is recommended to use \"{pause}\" as the CRI sandbox image."
        )),
        "{}",
        text(&o)
    );

    // An image the registry does not have: the error names it, the registry and the socket.
    let o = kubeadm(
        &root_a,
        &[
            "config",
            "images",
            "pull",
            "--image-repository",
            &repo,
            "--kubernetes-version",
            "v1.32.0",
            "--cri-socket",
            &cri_socket(),
        ],
    );
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "failed to pull image {repo}/kube-apiserver:v1.32.0"
        )) && err.contains(&format!("from registry 127.0.0.1:{}", registry.port))
            && err.contains(&cri_socket()),
        "{}",
        text(&o)
    );
    assert!(err.contains("hint:"), "{err}");

    // A socket that is not a CRI server (containerd's ttrpc socket).
    let o = kubeadm(
        &root_a,
        &[
            "config",
            "images",
            "pull",
            "--kubernetes-version",
            VERSION,
            "--cri-socket",
            &format!("unix://{SOCKET}.ttrpc"),
        ],
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!(
            "unix://{SOCKET}.ttrpc is not a CRI v1 container runtime"
        )),
        "{}",
        text(&o)
    );

    // Export: one archive, every blob checked, no partial file left.
    let bundle = t.join("bundle.tar");
    let ctr = p.ctr.display().to_string();
    let o = images_cmd(
        &root_a,
        "export",
        &repo,
        &["--output", &bundle.display().to_string(), "--ctr", &ctr],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(bundle.is_file());
    assert!(!t.join(".bundle.tar.partial").exists());
    let contents = kubeadm_cri::bundle::check(&bundle).unwrap();
    let mut got = contents.images.clone();
    got.sort();
    assert_eq!(got, want);

    // The air gap: no registry. A fresh containerd refuses a corrupted bundle with nothing
    // loaded, then loads the good one; pulling afterwards finds everything present.
    registry.stop();
    let root_b = t.join("b");
    std::fs::create_dir_all(&root_b).unwrap();
    let b = Containerd::start(&p.containerd, &t.join("cb"), &root_b, &pause);
    let bad = t.join("bad.tar");
    let mut bytes = std::fs::read(&bundle).unwrap();
    // Flip a byte inside the largest blob (a layer), not in a tar header.
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    std::fs::write(&bad, &bytes).unwrap();
    let o = kubeadm(
        &root_b,
        &[
            "config",
            "images",
            "import",
            &bad.display().to_string(),
            "--cri-socket",
            &cri_socket(),
            "--ctr",
            &ctr,
        ],
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("image bundle"),
        "{}",
        text(&o)
    );
    assert!(b.image_tags().is_empty(), "nothing may be half-imported");
    let import = |extra: &[&str]| {
        let bundle_s = bundle.display().to_string();
        let socket = cri_socket();
        let mut args = vec![
            "config",
            "images",
            "import",
            bundle_s.as_str(),
            "--cri-socket",
            socket.as_str(),
            "--ctr",
            ctr.as_str(),
        ];
        args.extend_from_slice(extra);
        kubeadm(&root_b, &args)
    };
    // With no registry and imagePullPolicy Never, init's preflight names every missing image
    // as an ImagePull error (a warning here, under --ignore-preflight-errors all).
    write_preflight_cfg("Never");
    let o = preflight(&root_b);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    for i in &images {
        assert!(
            err.contains(&format!("[WARNING ImagePull]: failed to pull image {i}")),
            "{i}: {}",
            text(&o)
        );
    }
    assert!(b.image_tags().is_empty());
    let o = import(&["--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(count(&o, "[dryrun] Would load "), 7, "{}", text(&o));
    assert!(b.image_tags().is_empty());
    let o = import(&[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(count(&o, "[config/images] Loaded "), 7, "{}", text(&o));
    let o = images_cmd(&root_b, "pull", &repo, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        count(&o, "[config/images] Image is present:"),
        7,
        "{}",
        text(&o)
    );
    assert_eq!(b.image_tags(), want);
    // Everything is there now: the same preflight has nothing to say about images.
    let o = preflight(&root_b);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("ImagePull"),
        "{}",
        text(&o)
    );
}

fn host_network_sandbox(name: &str) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "kube-system".into(),
            attempt: 0,
        }),
        hostname: String::new(),
        log_directory: String::new(),
        labels: Default::default(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: String::new(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: namespace_mode::NODE,
                    pid: namespace_mode::POD,
                    ipc: namespace_mode::POD,
                }),
            }),
        }),
    }
}

#[test]
fn reset_stops_and_removes_every_pod_sandbox() {
    let Some(p) = peers() else { return };
    let tmp = tempfile::Builder::new()
        .prefix("cri")
        .tempdir_in("/tmp")
        .unwrap();
    let t = tmp.path();
    let reg_dir = t.join("reg");
    std::fs::create_dir_all(&reg_dir).unwrap();
    let registry = Registry::start(&p.registry, &reg_dir);
    let root = t.join("node");
    std::fs::create_dir_all(&root).unwrap();
    let pause = format!("{}/pause:3.10", registry.repository());
    push_images(&p.skopeo, t, std::slice::from_ref(&pause));
    let c = Containerd::start(&p.containerd, &t.join("c"), &root, &pause);
    let client = c.client();
    let mut created = Vec::new();
    for name in ["etcd-node", "kube-apiserver-node"] {
        match client.run_pod_sandbox(host_network_sandbox(name)) {
            Ok(id) => created.push(id),
            Err(e) => {
                // Say why, then test the removal on what the runtime did create.
                eprintln!("this machine cannot run a Pod sandbox: {e}");
            }
        }
    }
    let listed = client.list_pod_sandboxes().unwrap();
    if created.is_empty() {
        eprintln!(
            "no sandbox could be started; removal is tested on the {} sandbox records containerd kept",
            listed.len()
        );
    }
    for id in &created {
        assert!(
            listed.iter().any(|s| &s.id == id),
            "{id} not listed: {listed:?}"
        );
    }
    if std::env::var_os("CI").is_some() {
        assert!(
            !listed.is_empty(),
            "CI must be able to create Pod sandboxes"
        );
    }

    // The dry run lists each sandbox and removes none.
    let o = kubeadm(
        &root,
        &["reset", "-f", "--dry-run", "--cri-socket", &cri_socket()],
    );
    assert!(o.status.success(), "{}", text(&o));
    for s in &listed {
        assert!(
            String::from_utf8_lossy(&o.stdout).contains(&format!(
                "[dryrun] Would stop and remove Pod sandbox {}",
                s.id
            )),
            "{}",
            text(&o)
        );
    }
    assert_eq!(client.list_pod_sandboxes().unwrap().len(), listed.len());

    let o = kubeadm(&root, &["reset", "-f", "--cri-socket", &cri_socket()]);
    assert!(o.status.success(), "{}", text(&o));
    for s in &listed {
        assert!(
            String::from_utf8_lossy(&o.stdout)
                .contains(&format!("[reset] Removed Pod sandbox {}", s.id)),
            "{}",
            text(&o)
        );
    }
    let left = client.list_pod_sandboxes().unwrap();
    assert!(left.is_empty(), "left behind: {left:?}");
}
