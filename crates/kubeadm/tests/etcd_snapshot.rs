//! `kubeadm etcd snapshot …` and `kubeadm etcd member …` against real etcd 3.5 members started
//! from the etcd manifests our `init phase etcd local` writes (each "node" under its own
//! `--rootfs`, listening only on its own loopback address): save under a write load, restore as a
//! new single-member cluster, corrupted snapshots refused with nothing changed, and the
//! quorum-loss drill: at the etcd level, and through kubeadm itself (`init`, `join
//! --control-plane`, `reset`, against the test API server with stand-in kubelets running etcd).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command as Std, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::PredicateBooleanExt;
use support::{peer, tree};

mod support;

#[path = "support/test_kubelet.rs"]
mod test_kubelet;

#[path = "support/control_plane.rs"]
mod control_plane;

const VERSION: &str = "v1.33.0";

struct Bins {
    etcd: PathBuf,
    etcdctl: PathBuf,
    etcdutl: PathBuf,
}

fn bins() -> Option<Bins> {
    let etcd = peer("etcd", Some("KUBEADM_TEST_ETCD"))?;
    let etcdctl = Some(etcd.with_file_name("etcdctl"))
        .filter(|p| p.is_file())
        .or_else(|| peer("etcdctl", None))?;
    let etcdutl = peer("etcdutl", Some("KUBEADM_TEST_ETCDUTL"))?;
    Some(Bins {
        etcd,
        etcdctl,
        etcdutl,
    })
}

/// Loopback address of node `i` of test `slot`, apart from the other tests of this process and
/// from other test binaries' (127.0.0.x).
fn node_ip(slot: usize, i: usize) -> String {
    let pid = std::process::id();
    format!(
        "127.{}.{}.{}",
        100 + pid % 100,
        (pid / 100) % 250,
        10 * (slot + 1) + i
    )
}

struct Node {
    name: String,
    ip: String,
    root: PathBuf,
}

impl Node {
    fn pki(&self) -> PathBuf {
        self.root.join("etc/kubernetes/pki")
    }
    fn manifest(&self) -> PathBuf {
        self.root.join("etc/kubernetes/manifests/etcd.yaml")
    }
    fn client_url(&self) -> String {
        format!("https://{}:2379", self.ip)
    }
    fn peer_url(&self) -> String {
        format!("https://{}:2380", self.ip)
    }
}

fn kubeadm(root: &Path) -> Command {
    let mut c = Command::cargo_bin("kubeadm").unwrap();
    c.arg("--rootfs").arg(root);
    c
}

/// `kubeadm etcd snapshot restore SNAPSHOT --etcdutl …` on `node`.
fn restore(bins: &Bins, node: &Node, snapshot: &str) -> Command {
    let mut c = kubeadm(&node.root);
    c.args(["etcd", "snapshot", "restore", snapshot, "--etcdutl"])
        .arg(&bins.etcdutl);
    c
}

fn init_phase(node: &Node, args: &[&str]) {
    kubeadm(&node.root)
        .args(["init", "phase"])
        .args(args)
        .args([
            "--apiserver-advertise-address",
            &node.ip,
            "--node-name",
            &node.name,
            "--kubernetes-version",
            VERSION,
        ])
        .assert()
        .success();
}

/// Three nodes sharing one etcd CA, each with its certificates and etcd manifest.
fn three_nodes(base: &Path, slot: usize) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    for i in 0..3 {
        let node = Node {
            name: format!("node-{i}"),
            ip: node_ip(slot, i),
            root: base.join(format!("node-{i}")),
        };
        std::fs::create_dir_all(&node.root).unwrap();
        if let Some(first) = nodes.first() {
            std::fs::create_dir_all(node.pki().join("etcd")).unwrap();
            for f in ["etcd/ca.crt", "etcd/ca.key"] {
                std::fs::copy(first.pki().join(f), node.pki().join(f)).unwrap();
            }
        }
        init_phase(&node, &["certs", "etcd-ca"]);
        for c in [
            "etcd-server",
            "etcd-peer",
            "etcd-healthcheck-client",
            "apiserver-etcd-client",
        ] {
            init_phase(&node, &["certs", c]);
        }
        init_phase(&node, &["etcd", "local"]);
        nodes.push(node);
    }
    nodes
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the node's etcd from its manifest's command as the kubelet would, host paths under the
/// node's root, listening only on the node's address; `cluster` overrides the initial cluster
/// (to form a three-member cluster from three single-node manifests).
fn start_etcd(bins: &Bins, node: &Node, cluster: Option<&str>) -> Proc {
    start_etcd_with(bins, node, cluster, &[])
}

/// [`start_etcd`] with `extra` flags last (Go's flag package keeps the last value).
fn start_etcd_with(bins: &Bins, node: &Node, cluster: Option<&str>, extra: &[&str]) -> Proc {
    let (command, _) = kubeadm_testapi::realbins::manifest_command(&node.manifest()).unwrap();
    let mut args = Vec::new();
    for a in command.iter().skip(1) {
        let Some((k, _)) = a.split_once('=') else {
            args.push(a.clone());
            continue;
        };
        match (k, cluster) {
            ("--listen-client-urls", _) => args.push(format!("{k}={}", node.client_url())),
            ("--listen-metrics-urls", _) => {}
            ("--initial-cluster", Some(c)) => args.push(format!("{k}={c}")),
            _ => args.push(kubeadm_testapi::realbins::rooted_arg(a, &node.root)),
        }
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    let data = node.root.join("var/lib/etcd");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let log = std::fs::File::create(node.root.join("etcd.log")).unwrap();
    Proc(
        Std::new(&bins.etcd)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

fn etcdctl(bins: &Bins, node: &Node, endpoints: &str, args: &[&str]) -> (bool, String) {
    let out = control_plane::etcdctl_command(&bins.etcdctl, &node.pki(), endpoints, "4s")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn wait_healthy(bins: &Bins, node: &Node, endpoints: &str) {
    let start = Instant::now();
    loop {
        let (ok, out) = etcdctl(bins, node, endpoints, &["endpoint", "health"]);
        if ok {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "etcd at {endpoints} not healthy: {out}\nlog: {}",
            std::fs::read_to_string(node.root.join("etcd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn cluster_of(nodes: &[Node]) -> String {
    nodes
        .iter()
        .map(|n| format!("{}={}", n.name, n.peer_url()))
        .collect::<Vec<_>>()
        .join(",")
}

fn endpoints_of(nodes: &[Node]) -> String {
    nodes
        .iter()
        .map(Node::client_url)
        .collect::<Vec<_>>()
        .join(",")
}

/// `etcdctl put` returning the revision it created.
fn put(bins: &Bins, node: &Node, endpoints: &str, key: &str, value: &str) -> Option<i64> {
    let (ok, out) = etcdctl(bins, node, endpoints, &["put", key, value, "-w", "json"]);
    if !ok {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(out.trim()).ok()?;
    v["header"]["revision"].as_i64()
}

fn keys(bins: &Bins, node: &Node, prefix: &str) -> Vec<String> {
    let (ok, out) = etcdctl(
        bins,
        node,
        &node.client_url(),
        &["get", "--prefix", prefix, "--keys-only"],
    );
    assert!(ok, "{out}");
    out.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn cluster_id(bins: &Bins, node: &Node) -> u64 {
    let (ok, out) = etcdctl(
        bins,
        node,
        &node.client_url(),
        &["endpoint", "status", "-w", "json"],
    );
    assert!(ok, "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    v[0]["Status"]["header"]["cluster_id"].as_u64().unwrap()
}

fn record_of(snapshot: &Path) -> serde_json::Value {
    let mut p = snapshot.as_os_str().to_owned();
    p.push(".meta.json");
    serde_json::from_slice(&std::fs::read(PathBuf::from(p)).unwrap()).unwrap()
}

/// The only snapshot in the node's default backup directory (host path and rooted path).
fn only_snapshot(node: &Node) -> (String, PathBuf) {
    let dir = node.root.join("var/lib/kubeadm/backups");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".db"))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    (
        format!("/var/lib/kubeadm/backups/{}", names[0]),
        dir.join(&names[0]),
    )
}

fn mode(p: &Path) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o777
}

#[test]
fn save_under_write_load_then_restore_holds_every_key_up_to_the_snapshot_revision() {
    let Some(bins) = bins() else { return };
    let base = tempfile::tempdir().unwrap();
    let nodes = three_nodes(base.path(), 0);
    let cluster = cluster_of(&nodes);
    let mut procs: Vec<Proc> = nodes
        .iter()
        .map(|n| start_etcd(&bins, n, Some(&cluster)))
        .collect();
    let all = endpoints_of(&nodes);
    wait_healthy(&bins, &nodes[0], &all);
    let old_cluster = cluster_id(&bins, &nodes[0]);
    for i in 0..20 {
        assert!(
            put(
                &bins,
                &nodes[0],
                &all,
                &format!("before/{i:03}"),
                &"x".repeat(4096)
            )
            .is_some()
        );
    }

    // A bounded writer puts keys during the save, remembering each key's revision.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let node = Node {
            name: nodes[0].name.clone(),
            ip: nodes[0].ip.clone(),
            root: nodes[0].root.clone(),
        };
        let all = all.clone();
        let b = Bins {
            etcd: bins.etcd.clone(),
            etcdctl: bins.etcdctl.clone(),
            etcdutl: bins.etcdutl.clone(),
        };
        std::thread::spawn(move || {
            let mut written = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) && i < 2000 {
                let key = format!("load/{i:05}");
                let rev = put(&b, &node, &all, &key, "v").expect("a put during the save failed");
                written.push((key, rev));
                i += 1;
            }
            written
        })
    };
    std::thread::sleep(Duration::from_millis(700));
    let out = kubeadm(&nodes[0].root)
        .args(["etcd", "snapshot", "save", "--keep", "3"])
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, Ordering::SeqCst);
    let written = writer.join().unwrap();
    let (host_snap, snap) = only_snapshot(&nodes[0]);
    assert!(stdout.contains(&host_snap), "{stdout}");
    assert_eq!(mode(&snap), 0o600);
    assert_eq!(mode(snap.parent().unwrap()), 0o700);
    let record = record_of(&snap);
    let revision = record["revision"].as_i64().unwrap();
    let before: Vec<&String> = written
        .iter()
        .filter(|(_, r)| *r <= revision)
        .map(|(k, _)| k)
        .collect();
    let after: Vec<&String> = written
        .iter()
        .filter(|(_, r)| *r > revision)
        .map(|(k, _)| k)
        .collect();
    assert!(
        !before.is_empty() && !after.is_empty(),
        "the writer must run before and after the snapshot: {} before, {} after (revision {revision})",
        before.len(),
        after.len()
    );

    // etcdutl agrees with our record and our status.
    let out = Std::new(&bins.etcdutl)
        .args(["snapshot", "status", "-w", "json"])
        .arg(&snap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(theirs["revision"].as_i64(), Some(revision));
    assert_eq!(theirs["totalKey"], record["totalKeys"]);
    let status = kubeadm(&nodes[0].root)
        .args(["etcd", "snapshot", "status", &host_snap, "-o", "json"])
        .assert()
        .success();
    let ours: serde_json::Value = serde_json::from_slice(&status.get_output().stdout).unwrap();
    assert_eq!(ours["revision"].as_i64(), Some(revision));
    assert_eq!(ours["sha256"], record["sha256"]);
    assert_eq!(ours["etcdHashVerified"], true);
    let sha = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &std::fs::read(&snap).unwrap());
    assert_eq!(
        record["sha256"].as_str().unwrap(),
        hex::encode(sha.as_ref())
    );

    // The member list through our command.
    let members = kubeadm(&nodes[0].root)
        .args(["etcd", "member", "list", "-o", "json"])
        .assert()
        .success();
    let members: serde_json::Value = serde_json::from_slice(&members.get_output().stdout).unwrap();
    assert_eq!(members["members"].as_array().unwrap().len(), 3, "{members}");

    // Restore on node-0 after the whole cluster is gone.
    procs.clear();
    restore(&bins, &nodes[0], &host_snap)
        .assert()
        .success()
        .stdout(predicates::str::contains("new single-member cluster"));
    let kept: Vec<String> = std::fs::read_dir(nodes[0].root.join("var/lib"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("etcd.before-restore-"))
        .collect();
    assert_eq!(kept.len(), 1, "the old data directory is kept: {kept:?}");
    assert!(
        nodes[0]
            .root
            .join("var/lib")
            .join(&kept[0])
            .join("member")
            .is_dir()
    );
    let manifest = std::fs::read_to_string(nodes[0].manifest()).unwrap();
    assert!(
        manifest.contains(&format!(
            "--initial-cluster={}={}",
            nodes[0].name,
            nodes[0].peer_url()
        )),
        "{manifest}"
    );
    assert!(manifest.contains("--initial-cluster-state=new"));
    let _restored = start_etcd(&bins, &nodes[0], None);
    wait_healthy(&bins, &nodes[0], &nodes[0].client_url());
    assert_ne!(
        cluster_id(&bins, &nodes[0]),
        old_cluster,
        "a new cluster id"
    );
    let (ok, out) = etcdctl(
        &bins,
        &nodes[0],
        &nodes[0].client_url(),
        &["member", "list"],
    );
    assert!(ok && out.lines().count() == 1, "one member: {out}");
    let have = keys(&bins, &nodes[0], "load/");
    for k in &before {
        assert!(
            have.contains(k),
            "{k} was written before revision {revision} but is missing"
        );
    }
    for k in &after {
        assert!(
            !have.contains(k),
            "{k} was written after revision {revision} but is present"
        );
    }
    assert_eq!(keys(&bins, &nodes[0], "before/").len(), 20);
}

#[test]
fn corrupted_snapshots_are_refused_by_status_and_restore_with_nothing_changed() {
    let Some(bins) = bins() else { return };
    let base = tempfile::tempdir().unwrap();
    let nodes = three_nodes(base.path(), 1);
    let node = &nodes[0];
    let single = format!("{}={}", node.name, node.peer_url());
    let etcd = start_etcd(&bins, node, Some(&single));
    wait_healthy(&bins, node, &node.client_url());
    for i in 0..50 {
        put(&bins, node, &node.client_url(), &format!("k/{i}"), "v").unwrap();
    }
    // A bad key file stops the save before anything is written.
    let key = base.path().join("bundle.key");
    let save_with_bundle = || {
        let mut c = kubeadm(&node.root);
        c.args(["etcd", "snapshot", "save", "/backups/good.db"])
            .arg("--encryption-key-file")
            .arg(&key);
        c
    };
    std::fs::write(&key, "not-hex\n").unwrap();
    save_with_bundle()
        .assert()
        .failure()
        .stderr(predicates::str::contains("--encryption-key-file"));
    assert!(!node.root.join("backups").exists());
    std::fs::write(&key, format!("{}\n", "ab12".repeat(16))).unwrap();
    save_with_bundle()
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "Wrote the encrypted bundle /backups/good.db.bundle",
        ));
    drop(etcd);
    // The bundle: 0600, no key material in the clear, opened with the key, refused with another.
    let sealed = node.root.join("backups/good.db.bundle");
    assert_eq!(mode(&sealed), 0o600);
    let raw = std::fs::read(&sealed).unwrap();
    assert!(!raw.windows(11).any(|w| w == b"PRIVATE KEY"));
    let listed = kubeadm(&node.root)
        .args([
            "etcd",
            "snapshot",
            "status",
            "/backups/good.db",
            "-o",
            "json",
            "--encryption-key-file",
        ])
        .arg(&key)
        .assert()
        .success();
    let listed: serde_json::Value = serde_json::from_slice(&listed.get_output().stdout).unwrap();
    let files = listed["bundleFiles"].as_array().unwrap();
    for f in [
        "/etc/kubernetes/pki/etcd/ca.key",
        "/etc/kubernetes/pki/etcd/ca.crt",
        "/etc/kubernetes/pki/apiserver-etcd-client.key",
    ] {
        assert!(files.iter().any(|x| x == f), "{f} in {files:?}");
    }
    let other = base.path().join("other.key");
    std::fs::write(&other, "cd34".repeat(16)).unwrap();
    kubeadm(&node.root)
        .args([
            "etcd",
            "snapshot",
            "status",
            "/backups/good.db",
            "--encryption-key-file",
        ])
        .arg(&other)
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "cannot decrypt the bundle /backups/good.db.bundle",
        ));
    let good = node.root.join("backups/good.db");
    let bytes = std::fs::read(&good).unwrap();
    let record = std::fs::read(node.root.join("backups/good.db.meta.json")).unwrap();
    // One byte flipped in the middle, and a truncated copy, each with the good record.
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x01;
    let truncated = bytes[..bytes.len() - 4096].to_vec();
    // And copies without any record: etcd's own appended hash must still catch them.
    for (name, data, with_record) in [
        ("flipped.db", &flipped, true),
        ("truncated.db", &truncated, true),
        ("flipped-bare.db", &flipped, false),
        ("truncated-bare.db", &truncated, false),
    ] {
        let p = node.root.join("backups").join(name);
        std::fs::write(&p, data).unwrap();
        if with_record {
            let mut r: serde_json::Value = serde_json::from_slice(&record).unwrap();
            r["file"] = serde_json::json!(name);
            std::fs::write(
                node.root.join("backups").join(format!("{name}.meta.json")),
                serde_json::to_vec(&r).unwrap(),
            )
            .unwrap();
        }
        let host = format!("/backups/{name}");
        let before = tree(&node.root);
        kubeadm(&node.root)
            .args(["etcd", "snapshot", "status", &host])
            .assert()
            .failure()
            .stderr(
                predicates::str::contains(host.as_str()).and(predicates::str::contains("unusable")),
            );
        restore(&bins, node, &host)
            .assert()
            .failure()
            .stderr(predicates::str::contains(host.as_str()));
        assert_eq!(
            tree(&node.root),
            before,
            "{name}: nothing may change on disk"
        );
    }
    // A dry run of a good restore shows each step and changes nothing.
    let before = tree(&node.root);
    restore(&bins, node, "/backups/good.db")
        .arg("--dry-run")
        .assert()
        .success()
        .stdout(
            predicates::str::contains("Would move \"/etc/kubernetes/manifests/etcd.yaml\"")
                .and(predicates::str::contains("Would run:"))
                .and(predicates::str::contains("snapshot restore"))
                .and(predicates::str::contains(
                    "Would write file \"/etc/kubernetes/manifests/etcd.yaml\"",
                )),
        );
    assert_eq!(tree(&node.root), before, "a dry run changes nothing");
    // Restore on a node that lost its PKI: the bundle puts the files back (never over existing
    // ones) before the restored member starts.
    let lost = node.pki().join("etcd/peer.key");
    let kept = node.pki().join("etcd/server.crt");
    let peer_key = std::fs::read(&lost).unwrap();
    std::fs::remove_file(&lost).unwrap();
    std::fs::write(&kept, b"changed here").unwrap();
    restore(&bins, node, "/backups/good.db")
        .arg("--encryption-key-file")
        .arg(&other)
        .assert()
        .failure()
        .stderr(predicates::str::contains("cannot decrypt"));
    assert!(!lost.exists(), "a wrong key changes nothing");
    restore(&bins, node, "/backups/good.db")
        .arg("--encryption-key-file")
        .arg(&key)
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "Put back /etc/kubernetes/pki/etcd/peer.key",
        ));
    assert_eq!(std::fs::read(&lost).unwrap(), peer_key);
    assert_eq!(mode(&lost), 0o600);
    assert_eq!(std::fs::read(&kept).unwrap(), b"changed here");
    // The good one passes.
    kubeadm(&node.root)
        .args(["etcd", "snapshot", "status", "/backups/good.db"])
        .assert()
        .success()
        .stdout(predicates::str::contains("record matches"));
}

#[test]
fn quorum_loss_drill_restore_on_the_survivor_then_a_member_joins_again() {
    let Some(bins) = bins() else { return };
    let base = tempfile::tempdir().unwrap();
    let nodes = three_nodes(base.path(), 2);
    let cluster = cluster_of(&nodes);
    let mut procs: Vec<Option<Proc>> = nodes
        .iter()
        .map(|n| Some(start_etcd(&bins, n, Some(&cluster))))
        .collect();
    let all = endpoints_of(&nodes);
    wait_healthy(&bins, &nodes[0], &all);
    for i in 0..100 {
        put(&bins, &nodes[0], &all, &format!("app/{i:03}"), "v").unwrap();
    }
    kubeadm(&nodes[0].root)
        .args(["etcd", "snapshot", "save"])
        .assert()
        .success();
    let (host_snap, _) = only_snapshot(&nodes[0]);

    // Two members die and lose their data: the survivor has no quorum.
    for i in [1, 2] {
        procs[i] = None;
        std::fs::remove_dir_all(nodes[i].root.join("var/lib/etcd")).unwrap();
    }
    assert!(
        put(&bins, &nodes[0], &nodes[0].client_url(), "app/lost", "v").is_none(),
        "without quorum a write must fail"
    );

    // The survivor's "kubelet": stops etcd once its manifest leaves the manifests directory.
    let survivor = procs[0].take().unwrap();
    let manifest = nodes[0].manifest();
    let kubelet = std::thread::spawn(move || {
        let mut p = survivor;
        let start = Instant::now();
        while manifest.exists() && start.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = p.0.kill();
        let _ = p.0.wait();
    });
    restore(&bins, &nodes[0], &host_snap)
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "Moved /etc/kubernetes/manifests/etcd.yaml",
        ));
    kubelet.join().unwrap();
    let _restored = start_etcd(&bins, &nodes[0], None);
    wait_healthy(&bins, &nodes[0], &nodes[0].client_url());
    assert_eq!(keys(&bins, &nodes[0], "app/").len(), 100);
    assert!(put(&bins, &nodes[0], &nodes[0].client_url(), "app/after", "v").is_some());

    // node-1 joins the restored cluster again as join does it: added as a learner through the
    // same membership client, started against the existing cluster, promoted once caught up.
    let tls = kubeadm_etcd::TlsFiles {
        ca: std::fs::read(nodes[0].pki().join("etcd/ca.crt")).unwrap(),
        cert: std::fs::read(nodes[0].pki().join("etcd/healthcheck-client.crt")).unwrap(),
        key: std::fs::read(nodes[0].pki().join("etcd/healthcheck-client.key")).unwrap(),
    };
    let client =
        kubeadm_etcd::EtcdClient::new(&[nodes[0].client_url()], Some(&tls), Duration::from_secs(5))
            .unwrap();
    let (learner, _) = client.member_add(&nodes[1].peer_url(), true).unwrap();
    let two = cluster_of(&nodes[..2]);
    let _rejoined = start_etcd_with(
        &bins,
        &nodes[1],
        Some(&two),
        &["--initial-cluster-state=existing"],
    );
    let members = client
        .promote_when_ready(learner.id, Duration::from_secs(60))
        .unwrap_or_else(|e| {
            panic!(
                "{e}\nnode-1 log: {}",
                std::fs::read_to_string(nodes[1].root.join("etcd.log")).unwrap_or_default()
            )
        });
    assert_eq!(members.len(), 2);
    wait_healthy(&bins, &nodes[1], &nodes[1].client_url());
    assert_eq!(keys(&bins, &nodes[1], "app/").len(), 101);
    // And our member commands see and remove it; the dry run only says so.
    kubeadm(&nodes[0].root)
        .args(["etcd", "member", "remove", "node-1", "--dry-run"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "[dryrun] Would remove the etcd member",
        ));
    assert_eq!(client.member_list().unwrap().len(), 2);
    kubeadm(&nodes[0].root)
        .args(["etcd", "member", "remove", "node-1"])
        .assert()
        .success()
        .stdout(predicates::str::contains("1 member(s) remain"));
}

/// A kubeadm command on `node`, checked to have succeeded; on failure the node's kubelet and
/// etcd logs are shown.
fn kubeadm_ok(kubelet: &test_kubelet::TestKubelet, node: &Node, args: &[&str]) -> String {
    kubelet.ok(&test_kubelet::kubeadm(&node.root, args))
}

/// Waits until the API server holds the mirror Pod of `node`'s etcd (join finds the members'
/// client URLs there).
fn wait_mirror_pod(kubelet: &test_kubelet::TestKubelet, admin_conf: &Path, node: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let text = std::fs::read_to_string(admin_conf).unwrap();
    let client = rt.block_on(test_kubelet::client_from(&text)).unwrap();
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(client, "kube-system");
    let name = format!("etcd-{node}");
    kubelet.wait_for(&format!("the mirror Pod {name}"), &|| {
        rt.block_on(pods.get_opt(&name)).is_ok_and(|p| p.is_some())
    });
}

/// The quorum-loss drill through kubeadm itself: `kubeadm init` on cp-a and `kubeadm join
/// --control-plane` on cp-b and cp-c (each node under its own `--rootfs` on its own loopback
/// address, its stand-in kubelet running etcd from the manifest kubeadm wrote); cp-b and cp-c
/// die and lose their data; `kubeadm etcd snapshot restore` on cp-a; the cluster serves again;
/// then the dead nodes come back through `kubeadm reset` and `kubeadm join --control-plane`
/// while a writer puts keys into cp-a's etcd (no put may fail): cp-b first, whose join finds
/// the learner member an earlier join that died had added, then cp-c. Both end as voting
/// members holding every key.
#[test]
fn quorum_loss_drill_through_kubeadm_init_join_restore_reset_and_join_again() {
    use control_plane::{ControlPlaneJoin, EtcdWriter, assert_no_write_failed};
    use test_kubelet::{KubeletSpec, TestKubelet, free_port};
    const CLUSTER_VERSION: &str = "v1.32.0";
    let Some(bins) = bins() else { return };
    let base = tempfile::tempdir().unwrap();
    let nodes: Vec<Node> = ["cp-a", "cp-b", "cp-c"]
        .iter()
        .enumerate()
        .map(|(i, name)| Node {
            name: name.to_string(),
            ip: node_ip(3, i),
            root: base.path().join(name),
        })
        .collect();
    for n in &nodes {
        std::fs::create_dir_all(&n.root).unwrap();
    }
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let kubelet = |node: &Node, healthz: u16, etcd_delay: Duration| {
        TestKubelet::start(KubeletSpec {
            root: node.root.clone(),
            node: node.name.clone(),
            ip: node.ip.clone(),
            healthz_port: healthz,
            binaries: [("etcd".to_string(), bins.etcd.clone())].into(),
            version: CLUSTER_VERSION.into(),
            on_start: None,
            node_ready: false,
            start_delays: [("etcd".to_string(), etcd_delay)].into(),
        })
    };

    // cp-a: certificates, the test API server serving with them, then init.
    let port = free_port(&a.ip);
    let healthz_a = free_port("127.0.0.1");
    let cfg = base.path().join("init.yaml");
    std::fs::write(
        &cfg,
        control_plane::init_config(&a.ip, port, healthz_a, CLUSTER_VERSION, "30s"),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    kubeadm(&a.root)
        .args(["init", "phase", "certs", "all", "--config", cfg])
        .assert()
        .success();
    let api = kubeadm_testapi::TestApiConfig::from_pki_dir(&a.pki(), CLUSTER_VERSION).unwrap();
    let endpoint = format!("{}:{port}", a.ip);
    let _server = kubeadm_testapi::TestApiServer::start_on(&api, &endpoint).unwrap();
    let kubelet_a = kubelet(a, healthz_a, Duration::ZERO);
    let init = [
        "init",
        "--config",
        cfg,
        "--upload-certs",
        "--ignore-preflight-errors",
        "all",
    ];
    let hash = control_plane::ca_hash(&kubeadm_ok(&kubelet_a, a, &init));
    let admin_conf = a.root.join("etc/kubernetes/admin.conf");
    wait_healthy(&bins, a, &a.client_url());
    wait_mirror_pod(&kubelet_a, &admin_conf, &a.name);

    // cp-b and cp-c join as control planes.
    let join = |node: &Node, etcd_delay: Duration| {
        let join = ControlPlaneJoin::new(&node.root, &endpoint, &hash, &node.name, &node.ip);
        let k = kubelet(node, join.healthz, etcd_delay);
        let stdout = kubeadm_ok(&k, node, &join.argv());
        wait_mirror_pod(&k, &admin_conf, &node.name);
        (k, stdout)
    };
    let (kubelet_b, _) = join(b, Duration::ZERO);
    let (kubelet_c, _) = join(c, Duration::ZERO);
    let all = endpoints_of(&nodes);
    wait_healthy(&bins, a, &all);
    let (ok, out) = etcdctl(&bins, a, &all, &["member", "list"]);
    assert!(ok && out.lines().count() == 3, "three members: {out}");
    for i in 0..100 {
        put(&bins, a, &all, &format!("app/{i:03}"), "v").unwrap();
    }
    kubeadm(&a.root)
        .args(["etcd", "snapshot", "save"])
        .assert()
        .success();
    let (host_snap, _) = only_snapshot(a);

    // cp-b and cp-c die and lose their etcd data: cp-a has no quorum.
    drop(kubelet_b);
    drop(kubelet_c);
    for n in [b, c] {
        std::fs::remove_dir_all(n.root.join("var/lib/etcd")).unwrap();
    }
    assert!(
        put(&bins, a, &a.client_url(), "app/lost", "v").is_none(),
        "without quorum a write must fail"
    );

    // Restore on the survivor: its kubelet stops etcd when the manifest leaves and starts the
    // restored single member from the manifest restore writes back.
    restore(&bins, a, &host_snap)
        .assert()
        .success()
        .stdout(predicates::str::contains("new single-member cluster"));
    wait_healthy(&bins, a, &a.client_url());
    assert_eq!(keys(&bins, a, "app/").len(), 100);
    assert!(put(&bins, a, &a.client_url(), "app/after", "v").is_some());
    let tls = kubeadm_etcd::TlsFiles {
        ca: std::fs::read(a.pki().join("etcd/ca.crt")).unwrap(),
        cert: std::fs::read(a.pki().join("etcd/healthcheck-client.crt")).unwrap(),
        key: std::fs::read(a.pki().join("etcd/healthcheck-client.key")).unwrap(),
    };
    let etcd_a =
        kubeadm_etcd::EtcdClient::new(&[a.client_url()], Some(&tls), Duration::from_secs(5))
            .unwrap();
    assert_eq!(etcd_a.member_list().unwrap().len(), 1);
    // A join of cp-b's that died right after adding its member: a learner that never started.
    let (died, _) = etcd_a.member_add(&b.peer_url(), true).unwrap();

    // cp-b comes back: reset, then join again (its kubelet starts etcd 3 s late); the join finds
    // the member the died join added.
    let etcdctl_bin = control_plane::etcdctl_next_to(&bins.etcd);
    let rejoin = |node: &Node| {
        kubeadm(&node.root).args(["reset", "-f"]).assert().success();
        let prefix = format!("rejoin-{}", node.name);
        let writer = EtcdWriter::start(&etcdctl_bin, &a.pki(), &a.client_url(), &prefix);
        let (k, stdout) = join(node, Duration::from_secs(3));
        let report = assert_no_write_failed(writer, &format!("{}'s join", node.name));
        assert!(stdout.contains("Promoted the learner"), "{stdout}");
        control_plane::assert_learner_then_voter(&report, &node.peer_url());
        (k, stdout)
    };
    let (kubelet_b, stdout) = rejoin(b);
    assert!(
        stdout.contains(&format!(
            "This node's etcd member {:x} ({}) is already in the cluster as a learner",
            died.id,
            b.peer_url()
        )),
        "{stdout}"
    );
    // cp-c comes back the same way, its member added anew.
    let (kubelet_c, stdout) = rejoin(c);
    assert!(stdout.contains("Announced new etcd member"), "{stdout}");
    let manifest_c = std::fs::read_to_string(c.manifest()).unwrap();
    for n in [a, b, c] {
        let member = format!("{}={}", n.name, n.peer_url());
        assert!(manifest_c.contains(&member), "{member} in:\n{manifest_c}");
    }

    // Three voting members again, and each new one holds every key.
    let members = etcd_a.member_list().unwrap();
    assert_eq!(members.len(), 3, "{members:?}");
    assert!(members.iter().all(|m| !m.is_learner), "{members:?}");
    let mut names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["cp-a", "cp-b", "cp-c"]);
    for prefix in ["app/", "rejoin-cp-b/", "rejoin-cp-c/"] {
        let want = keys(&bins, a, prefix);
        assert!(!want.is_empty(), "{prefix}");
        for n in [b, c] {
            assert_eq!(keys(&bins, n, prefix), want, "{prefix} on {}", n.name);
        }
    }
    assert_eq!(keys(&bins, b, "app/").len(), 101);
    drop((kubelet_b, kubelet_c, kubelet_a));
}
