//! A whole worker `kubeadm join` (and the `reset` after it) under a `--rootfs` whose paths are
//! links: `/etc` an absolute link, `/var/lib/kubelet` a relative one climbing past the root,
//! `/patches` an absolute link to a directory that exists only inside the root, and
//! `/etc/kubernetes/pki/ca.crt` a link as the last component. Each must resolve inside the root
//! as a chroot would: nothing outside it is read, written or deleted (a victim directory at the
//! links' host targets must stay as it was), and `join --dry-run` names the same files the real
//! join then writes (each found where the in-root resolution leads). The cluster is an init of
//! another root against the test API server; a test kubelet plays the joining node's kubelet,
//! resolving its paths inside the root the same way.

#[path = "support/control_plane.rs"]
mod control_plane;
#[path = "support/init_world.rs"]
mod init_world;
#[path = "support/test_kubelet.rs"]
mod test_kubelet;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use control_plane::WorkerJoin;
use init_world::{VERSION, World, text};
use test_kubelet::{KubeletSpec, TestKubelet, free_port, kubeadm, on_node};

/// Every entry below `dir` (links not followed) with what it is: a link's target, a file's
/// content, or "dir".
fn picture(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let m = fs::symlink_metadata(&p).unwrap();
            let what = if m.file_type().is_symlink() {
                format!("link to {}", fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else {
                String::from_utf8_lossy(&fs::read(&p).unwrap()).into_owned()
            };
            out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), what);
        }
    }
    out
}

/// `../` enough times to climb from `dir` past `/`, then `target` (absolute) made relative: a
/// relative link that escapes the root when followed on the host.
fn escaping(dir: &Path, target: &Path) -> PathBuf {
    let mut p = PathBuf::new();
    for _ in 0..dir.components().count() + 2 {
        p.push("..");
    }
    p.join(target.strip_prefix("/").unwrap())
}

/// The files a dry run says it would write.
fn would_write(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("[dryrun] Would write file \""))
        .filter_map(|l| l.split('"').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn worker_join_and_reset_stay_inside_a_linked_root() {
    let world = World::new();
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    fs::create_dir_all(&a).unwrap();
    world.prepare(&a);
    let server = world.server();
    let cfg = world.config(dir.path(), &server);
    let out = kubeadm(
        &a,
        &[
            "init",
            "--config",
            cfg.to_str().unwrap(),
            "--ignore-preflight-errors",
            "all",
        ],
    );
    assert!(out.status.success(), "init: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let hash = stdout
        .split_whitespace()
        .skip_while(|w| *w != "--discovery-token-ca-cert-hash")
        .nth(1)
        .expect("init printed the CA hash")
        .to_string();

    // The victim: what the links point at on the invoking host.
    let victim = tempfile::tempdir().unwrap();
    let v = victim.path();
    fs::create_dir_all(v.join("etc/kubernetes/manifests")).unwrap();
    fs::write(v.join("etc/kubernetes/manifests/keep.yaml"), "x").unwrap();
    fs::create_dir_all(v.join("kubelet")).unwrap();
    fs::write(v.join("kubelet/keep"), "x").unwrap();
    let victim_before = picture(v);

    // B's root: the same paths exist inside it, so each link resolves (inside) to a directory.
    let b = dir.path().join("b");
    let inside = |p: &Path| b.join(p.strip_prefix("/").unwrap());
    fs::create_dir_all(inside(&v.join("etc/kubernetes/pki"))).unwrap();
    symlink(v.join("etc"), b.join("etc")).unwrap();
    fs::create_dir_all(b.join("var/lib")).unwrap();
    fs::create_dir_all(inside(&v.join("kubelet"))).unwrap();
    symlink(
        escaping(&b.join("var/lib"), &v.join("kubelet")),
        b.join("var/lib/kubelet"),
    )
    .unwrap();
    symlink(
        v.join("etc/kubernetes/manifests/keep.yaml"),
        inside(&v.join("etc/kubernetes/pki/ca.crt")),
    )
    .unwrap();
    // A directory that exists only inside the root: read from the host, the patch is missing
    // and the kubelet-check below waits on the wrong port.
    let patches = PathBuf::from(format!("/kubeadm-test-patches-{}", std::process::id()));
    assert!(!patches.exists());
    let healthz_b = free_port("127.0.0.1");
    fs::create_dir_all(inside(&patches)).unwrap();
    fs::write(
        inside(&patches).join("kubeletconfiguration+merge.yaml"),
        format!("healthzPort: {healthz_b}\n"),
    )
    .unwrap();
    symlink(&patches, b.join("patches")).unwrap();

    let endpoint = server.addr().to_string();
    let worker = WorkerJoin::new(&endpoint, &hash, "worker-b");
    let join = worker.argv();

    // The dry run: changes nothing anywhere, and reads the patch through the link.
    let root_before = picture(&b);
    let mut dry_args = join.to_vec();
    dry_args.push("--dry-run");
    let dry = kubeadm(&b, &dry_args);
    assert!(dry.status.success(), "join --dry-run: {}", text(&dry));
    let dry_out = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(
        dry_out.contains(
            "[patches] Found the following patch files: [kubeletconfiguration+merge.yaml]"
        ),
        "the dry run did not read the patch inside the root:\n{dry_out}"
    );
    assert_eq!(picture(&b), root_before, "join --dry-run changed the root");
    assert_eq!(
        picture(v),
        victim_before,
        "join --dry-run changed the victim"
    );
    let planned = would_write(&dry_out);
    for want in [
        "/etc/kubernetes/pki/ca.crt",
        "/etc/kubernetes/bootstrap-kubelet.conf",
        "/var/lib/kubelet/config.yaml",
        "/var/lib/kubelet/kubeadm-flags.env",
    ] {
        assert!(
            planned.iter().any(|p| p == want),
            "{want} not in the dry run's writes {planned:?}"
        );
    }

    // The real join.
    let kubelet = TestKubelet::start(KubeletSpec {
        root: b.clone(),
        node: "worker-b".into(),
        ip: "127.0.0.3".into(),
        healthz_port: healthz_b,
        binaries: BTreeMap::new(),
        version: VERSION.into(),
        on_start: None,
        node_ready: false,
        start_delays: BTreeMap::new(),
    });
    let out = kubeadm(&b, &join);
    let stdout = kubelet.ok(&out);
    assert!(
        stdout.contains("This node has joined the cluster"),
        "{stdout}"
    );
    assert_eq!(picture(v), victim_before, "join changed the victim");
    assert!(!patches.exists(), "join created {}", patches.display());
    for link in ["etc", "var/lib/kubelet", "patches"] {
        assert!(
            fs::symlink_metadata(b.join(link))
                .unwrap()
                .file_type()
                .is_symlink(),
            "{link} is no longer a link"
        );
    }
    // Where the in-root resolution leads: below the root's copy of the victim's paths.
    assert!(inside(&v.join("etc/kubernetes/kubelet.conf")).is_file());
    let config = fs::read_to_string(inside(&v.join("kubelet/config.yaml"))).unwrap();
    assert!(
        config.contains(&format!("healthzPort: {healthz_b}")),
        "{config}"
    );
    // The last-component link was replaced by the cluster's CA, not written through.
    let ca = inside(&v.join("etc/kubernetes/pki/ca.crt"));
    assert!(
        fs::symlink_metadata(&ca).unwrap().is_file(),
        "ca.crt still a link"
    );
    assert_eq!(
        fs::read(&ca).unwrap(),
        fs::read(a.join("etc/kubernetes/pki/ca.crt")).unwrap()
    );
    // Every file the dry run named is where the real run put it (the bootstrap kubeconfig is
    // removed again once the kubelet has its own).
    for p in planned
        .iter()
        .filter(|p| *p != "/etc/kubernetes/bootstrap-kubelet.conf")
    {
        let at = on_node(&b, p);
        assert!(
            at.is_file() && at.starts_with(&b),
            "the dry run's {p} is not at {}",
            at.display()
        );
    }
    drop(kubelet);

    // reset: its dry run lists what is inside the root, the real run removes it, and the
    // victim stays.
    let dry = kubeadm(&b, &["reset", "-f", "--dry-run"]);
    assert!(dry.status.success(), "reset --dry-run: {}", text(&dry));
    let listed_victim = text(&dry)
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '.')
        .any(|w| w == "keep" || w == "keep.yaml");
    assert!(
        !listed_victim,
        "reset --dry-run listed the victim: {}",
        text(&dry)
    );
    assert!(text(&dry).contains("kubelet.conf"), "{}", text(&dry));
    let out = kubeadm(&b, &["reset", "-f"]);
    assert!(out.status.success(), "reset: {}", text(&out));
    assert_eq!(picture(v), victim_before, "reset changed the victim");
    assert!(!inside(&v.join("etc/kubernetes/kubelet.conf")).exists());
    assert!(!inside(&v.join("kubelet/config.yaml")).exists());
    let left: Vec<PathBuf> = picture(&b)
        .into_iter()
        .filter(|(_, what)| what != "dir" && !what.starts_with("link to"))
        .map(|(p, _)| p)
        .filter(|p| !p.starts_with(inside(&patches).strip_prefix(&b).unwrap()))
        .collect();
    assert!(left.is_empty(), "reset left {left:?}");
}
