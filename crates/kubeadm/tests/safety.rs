//! Issue 13's reproductions, as whole commands: `--rootfs` containment (absolute and relative
//! links, along the path and last, real and dry runs), `--rootfs` itself checked, no silent key
//! replacement, one CA rule, strict component configs, bounded input, quiet EPIPE, and
//! `host prepare` checking `/etc/fstab` first.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command as Std, Stdio};

use assert_cmd::Command;

const VERSION: &str = "v1.33.0";

fn kubeadm(root: &Path) -> Command {
    let mut c = Command::cargo_bin("kubeadm").unwrap();
    c.arg("--rootfs").arg(root);
    c
}

fn phase(root: &Path, args: &[&str]) -> std::process::Output {
    kubeadm(root)
        .args(["init", "phase"])
        .args(args)
        .args([
            "--apiserver-advertise-address",
            "127.0.0.1",
            "--node-name",
            "node1",
            "--kubernetes-version",
            VERSION,
        ])
        .output()
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file below `dir` (paths relative to it), links not followed.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// A victim directory outside the root with a manifest that must survive.
fn victim() -> tempfile::TempDir {
    let v = tempfile::tempdir().unwrap();
    let m = v.path().join("etc/kubernetes/manifests");
    fs::create_dir_all(&m).unwrap();
    fs::write(m.join("keep.yaml"), "x").unwrap();
    v
}

fn victim_intact(v: &Path) {
    assert_eq!(
        files(v),
        vec![PathBuf::from("etc/kubernetes/manifests/keep.yaml")],
        "something outside the root changed"
    );
}

/// `../` enough times to climb from `dir` to `/`, then `target` (absolute) made relative.
fn escaping(dir: &Path, target: &Path) -> PathBuf {
    let mut p = PathBuf::new();
    for _ in 0..dir.components().count() + 2 {
        p.push("..");
    }
    p.join(target.strip_prefix("/").unwrap())
}

#[test]
fn reset_never_empties_a_directory_outside_the_root() {
    for relative in [false, true] {
        let v = victim();
        let r = tempfile::tempdir().unwrap();
        let target = v.path().join("etc");
        if relative {
            symlink(escaping(r.path(), &target), r.path().join("etc")).unwrap();
        } else {
            symlink(&target, r.path().join("etc")).unwrap();
        }
        let dry = kubeadm(r.path())
            .args(["reset", "-f", "--dry-run"])
            .output()
            .unwrap();
        assert!(dry.status.success(), "{}", text(&dry));
        assert!(
            !text(&dry).contains("keep.yaml"),
            "dry run listed the outside directory: {}",
            text(&dry)
        );
        let out = kubeadm(r.path()).args(["reset", "-f"]).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        victim_intact(v.path());
    }
}

#[test]
fn reset_follows_var_run_inside_the_root_and_dry_run_says_the_same() {
    let r = tempfile::tempdir().unwrap();
    fs::create_dir_all(r.path().join("var")).unwrap();
    fs::create_dir_all(r.path().join("run/kubernetes")).unwrap();
    fs::write(r.path().join("run/kubernetes/apiserver.sock.x"), "x").unwrap();
    // Debian's absolute `/var/run -> /run`: it is the root's /run that reset must clean.
    symlink("/run", r.path().join("var/run")).unwrap();
    let dry = kubeadm(r.path())
        .args(["reset", "-f", "--dry-run"])
        .output()
        .unwrap();
    assert!(
        text(&dry).contains("\"/var/run/kubernetes\": apiserver.sock.x"),
        "{}",
        text(&dry)
    );
    assert!(r.path().join("run/kubernetes/apiserver.sock.x").exists());
    let out = kubeadm(r.path()).args(["reset", "-f"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!r.path().join("run/kubernetes/apiserver.sock.x").exists());
    assert!(r.path().join("run/kubernetes").is_dir());
}

#[test]
fn init_phases_write_inside_the_root_whatever_the_links() {
    // `ln -s $V $R/etc`: absolute, along the path; the link dangles inside the root.
    let v = victim();
    let r = tempfile::tempdir().unwrap();
    symlink(v.path(), r.path().join("etc")).unwrap();
    for dry in [true, false] {
        let mut args = vec!["certs", "ca"];
        if dry {
            args.push("--dry-run");
        }
        let out = phase(r.path(), &args);
        assert!(!out.status.success(), "dry={dry}: {}", text(&out));
        assert!(
            text(&out).contains(
                "/etc is a symbolic link to a directory that does not exist inside the root"
            ),
            "dry={dry}: {}",
            text(&out)
        );
    }
    victim_intact(v.path());
    // Relative and escaping, to a directory that exists inside the root: followed there.
    let v = victim();
    let r = tempfile::tempdir().unwrap();
    let inside = r.path().join(v.path().strip_prefix("/").unwrap());
    fs::create_dir_all(inside.join("etc")).unwrap();
    symlink(
        escaping(r.path(), &v.path().join("etc")),
        r.path().join("etc"),
    )
    .unwrap();
    let out = phase(r.path(), &["certs", "ca"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(inside.join("etc/kubernetes/pki/ca.crt").is_file());
    // A last-component link (ca.key -> the victim's file) is replaced, never written through.
    let pki = inside.join("etc/kubernetes/pki");
    fs::remove_file(pki.join("ca.crt")).unwrap();
    fs::remove_file(pki.join("ca.key")).unwrap();
    symlink(
        v.path().join("etc/kubernetes/manifests/keep.yaml"),
        pki.join("front-proxy-ca.key"),
    )
    .unwrap();
    let out = phase(r.path(), &["kubeconfig", "admin"]);
    assert!(!out.status.success(), "no CA: {}", text(&out));
    victim_intact(v.path());
}

#[test]
fn rootfs_must_be_an_existing_directory() {
    let d = tempfile::tempdir().unwrap();
    let typo = d.path().join("typo");
    let out = phase(&typo, &["certs", "ca"]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(
        t.contains("--rootfs") && t.contains("no such directory"),
        "{t}"
    );
    assert!(!typo.exists(), "a missing --rootfs was created");
    fs::write(&typo, "file").unwrap();
    let out = kubeadm(&typo).args(["reset", "-f"]).output().unwrap();
    assert!(!out.status.success());
    let t = text(&out);
    assert!(
        t.contains("--rootfs") && t.contains("not a directory"),
        "{t}"
    );
}

#[test]
fn an_existing_ca_key_without_its_certificate_is_never_replaced() {
    let r = tempfile::tempdir().unwrap();
    let pki = r.path().join("etc/kubernetes/pki");
    fs::create_dir_all(&pki).unwrap();
    fs::write(pki.join("ca.key"), "the operator's key").unwrap();
    for args in [&["certs", "ca"][..], &["certs", "all"][..]] {
        let out = phase(r.path(), args);
        assert!(!out.status.success(), "{args:?}: {}", text(&out));
        let t = text(&out);
        assert!(
            t.contains("/etc/kubernetes/pki/ca.key exists but its certificate /etc/kubernetes/pki/ca.crt is missing"),
            "{t}"
        );
        assert!(
            t.contains("hint: restore /etc/kubernetes/pki/ca.crt"),
            "{t}"
        );
    }
    assert_eq!(
        fs::read_to_string(pki.join("ca.key")).unwrap(),
        "the operator's key"
    );
    assert_eq!(files(&pki), vec![PathBuf::from("ca.key")]);
}

#[test]
fn a_garbage_sa_key_is_found_before_anything_is_written() {
    let r = tempfile::tempdir().unwrap();
    let pki = r.path().join("etc/kubernetes/pki");
    fs::create_dir_all(&pki).unwrap();
    fs::write(pki.join("sa.key"), "garbage").unwrap();
    let out = phase(r.path(), &["certs", "all"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("sa.key"), "{}", text(&out));
    assert_eq!(
        files(&pki),
        vec![PathBuf::from("sa.key")],
        "files were written"
    );
}

/// Writes a CA valid from `from` for `hours` hours (relative to now) into the root.
fn put_ca(root: &Path, from: jiff::SignedDuration, hours: u64) {
    use kubeadm_pki::cert::self_signed;
    use kubeadm_pki::{AltNames, CertRequest, KeyAlgorithm, PrivateKey};
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let req = CertRequest {
        cn: "kubernetes".into(),
        orgs: vec![],
        usage: kubeadm_pki::table::Usage::Ca,
        alt: AltNames::default(),
        validity: std::time::Duration::from_secs(hours * 3600),
    };
    let then = jiff::Timestamp::now() + from;
    let issued = self_signed(&req, &key, then).unwrap();
    let pki = root.join("etc/kubernetes/pki");
    fs::create_dir_all(&pki).unwrap();
    fs::write(pki.join("ca.crt"), &issued.pem).unwrap();
    fs::write(pki.join("ca.key"), &key.pem).unwrap();
    // An apiserver certificate it signed while it was valid, for `certs renew`.
    let leaf_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let leaf = kubeadm_pki::cert::sign(
        &CertRequest {
            cn: "kube-apiserver".into(),
            usage: kubeadm_pki::table::Usage::Server,
            ..req
        },
        &leaf_key,
        &kubeadm_pki::cert::Authority {
            cert_der: &issued.der,
            key: &key,
        },
        then + jiff::SignedDuration::from_mins(1),
    )
    .unwrap();
    fs::write(pki.join("apiserver.crt"), leaf.pem).unwrap();
    fs::write(pki.join("apiserver.key"), &leaf_key.pem).unwrap();
}

#[test]
fn an_expired_or_future_ca_never_signs() {
    for (from, words) in [
        (jiff::SignedDuration::from_hours(-3), "has expired"),
        (jiff::SignedDuration::from_hours(48), "is not valid yet"),
    ] {
        let r = tempfile::tempdir().unwrap();
        put_ca(r.path(), from, 1);
        let before = files(r.path());
        let cfg_dir = tempfile::tempdir().unwrap();
        let cfg = cfg_dir.path().join("cluster.yaml");
        fs::write(
            &cfg,
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncontrolPlaneEndpoint: 127.0.0.1:6443\n",
        )
        .unwrap();
        let cfg = cfg.display().to_string();
        for args in [
            vec!["init", "phase", "kubeconfig", "all"],
            vec!["init", "phase", "certs", "apiserver"],
            vec!["certs", "renew", "apiserver"],
            vec![
                "kubeconfig",
                "user",
                "--client-name",
                "alice",
                "--config",
                &cfg,
            ],
        ] {
            let mut c = kubeadm(r.path());
            c.args(&args);
            if args[0] == "init" {
                c.args([
                    "--apiserver-advertise-address",
                    "127.0.0.1",
                    "--node-name",
                    "node1",
                ]);
                c.args(["--kubernetes-version", VERSION]);
            }
            let out = c.output().unwrap();
            let t = text(&out);
            assert!(!out.status.success(), "{args:?} signed with a bad CA: {t}");
            assert!(
                t.contains(words) && t.contains("valid from"),
                "{args:?}: {t}"
            );
        }
        assert_eq!(files(r.path()), before, "something was written");
    }
}

#[test]
fn a_plain_openssl_ca_without_san_is_accepted() {
    let r = tempfile::tempdir().unwrap();
    let pki = r.path().join("etc/kubernetes/pki");
    fs::create_dir_all(&pki).unwrap();
    let made = Std::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=corp-ca",
        ])
        .args(["-days", "30", "-keyout"])
        .arg(pki.join("ca.key"))
        .arg("-out")
        .arg(pki.join("ca.crt"))
        .output();
    match made {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!("openssl: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            assert!(std::env::var("CI").is_err(), "openssl is needed: {e}");
            eprintln!("skipped: no openssl");
            return;
        }
    }
    let out = phase(r.path(), &["certs", "all"]);
    assert!(out.status.success(), "{}", text(&out));
    let v = Std::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(pki.join("ca.crt"))
        .arg(pki.join("apiserver.crt"))
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
}

#[test]
fn kubelet_configuration_is_validated() {
    let d = tempfile::tempdir().unwrap();
    for (body, words) in [
        ("bogusField: 1\n", "bogusField"),
        ("cgroupDriver: 7\n", "cgroupDriver"),
    ] {
        let f = d.path().join("kubeadm.yaml");
        fs::write(
            &f,
            format!("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n{body}"),
        )
        .unwrap();
        let out = Command::cargo_bin("kubeadm")
            .unwrap()
            .args(["config", "validate", "--config"])
            .arg(&f)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{body}: {}", text(&out));
        let t = text(&out);
        assert!(t.contains("kubeadm.yaml:6:") && t.contains(words), "{t}");
    }
}

#[test]
fn config_files_are_bounded_and_regular() {
    let d = tempfile::tempdir().unwrap();
    let big = d.path().join("big.yaml");
    fs::write(&big, vec![b'#'; 5 << 20]).unwrap();
    let fifo = d.path().join("fifo.yaml");
    assert!(Std::new("mkfifo").arg(&fifo).status().unwrap().success());
    for (path, words) in [
        (PathBuf::from("/dev/zero"), "device"),
        (fifo, "FIFO"),
        (d.path().to_path_buf(), "directory"),
        (big, "larger than 4 MiB"),
    ] {
        let start = std::time::Instant::now();
        let out = Command::cargo_bin("kubeadm")
            .unwrap()
            .args(["config", "validate", "--config"])
            .arg(&path)
            .timeout(std::time::Duration::from_secs(20))
            .output()
            .unwrap();
        let t = text(&out);
        assert!(!out.status.success(), "{path:?}: {t}");
        assert!(
            t.contains(&path.display().to_string()) && t.contains(words),
            "{t}"
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
    }
}

/// Runs kubeadm with stdout into a pipe of which one line is read before it is closed.
fn head_1(args: &[&str], root: Option<&Path>) -> (Option<i32>, String) {
    let mut c = Std::new(assert_cmd::cargo::cargo_bin("kubeadm"));
    if let Some(r) = root {
        c.arg("--rootfs").arg(r);
    }
    let mut child = c
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // The reader is dropped here: the pipe is closed with output still to come.
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let (code, stderr) = head_1(&["completion", "bash"], None);
    assert_eq!(code, Some(141), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let r = tempfile::tempdir().unwrap();
    let (code, stderr) = head_1(
        &[
            "init",
            "--dry-run",
            "--kubernetes-version",
            VERSION,
            "--apiserver-advertise-address",
            "127.0.0.1",
            "--node-name",
            "node1",
            "--ignore-preflight-errors",
            "all",
        ],
        Some(r.path()),
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(matches!(code, Some(141) | Some(0)), "{code:?}: {stderr}");
}

#[test]
fn host_prepare_checks_fstab_before_changing_anything() {
    let r = tempfile::tempdir().unwrap();
    fs::create_dir_all(r.path().join("etc")).unwrap();
    fs::create_dir_all(r.path().join("proc/sys/net/ipv4")).unwrap();
    fs::write(r.path().join("proc/sys/net/ipv4/ip_forward"), "0\n").unwrap();
    fs::write(
        r.path().join("proc/swaps"),
        "Filename Type Size Used Priority\n",
    )
    .unwrap();
    fs::write(
        r.path().join("etc/fstab"),
        b"/dev/sda2 none swap sw 0 0\n\xff\xfe garbage\n",
    )
    .unwrap();
    let before = files(r.path());
    let out = kubeadm(r.path())
        .args(["host", "prepare"])
        .output()
        .unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("/etc/fstab") && t.contains("UTF-8"), "{t}");
    assert!(t.contains("nothing was changed"), "{t}");
    assert_eq!(
        files(r.path()),
        before,
        "host prepare changed files before failing"
    );
    // A line that is no fstab entry.
    fs::write(
        r.path().join("etc/fstab"),
        "/dev/sda2 none swap sw 0 0\njunk\n",
    )
    .unwrap();
    let out = kubeadm(r.path())
        .args(["host", "prepare"])
        .output()
        .unwrap();
    assert!(text(&out).contains("line 2"), "{}", text(&out));
    assert_eq!(files(r.path()), before);
}

/// Defect 8: messages in the operator's words, each reproduced as the issue found it.
#[test]
fn messages_use_the_operators_words() {
    let d = tempfile::tempdir().unwrap();
    let validate = |body: &str| {
        let f = d.path().join("kubeadm.yaml");
        fs::write(&f, body).unwrap();
        let out = Command::cargo_bin("kubeadm")
            .unwrap()
            .args(["config", "validate", "--config"])
            .arg(&f)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{body}: {}", text(&out));
        text(&out)
    };
    // A bad number: what is expected, not "invalid i32".
    let t = validate(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  bindPort: abc\n",
    );
    assert!(
        t.contains(
            "localAPIEndpoint.bindPort: expected a whole number from -2147483648 to 2147483647"
        ),
        "{t}"
    );
    assert!(!t.contains("i32"), "{t}");
    // An alias bomb: the limit in words, not "budget breached: Nodes { nodes: … }".
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
    for (name, prev) in [("b", "a"), ("c", "b"), ("d", "c"), ("e", "d"), ("f", "e")] {
        let refs = vec![format!("*{prev}"); 9].join(", ");
        bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    bomb.push_str("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n");
    let t = validate(&bomb);
    assert!(t.contains("the YAML is too large once expanded"), "{t}");
    assert!(!t.contains("budget") && !t.contains("Nodes {"), "{t}");

    // A key file that is not text: said so, no advice about permissions.
    let key = d.path().join("key.bin");
    fs::write(&key, [0xff, 0xfe, 0x00, 0x81]).unwrap();
    let r = tempfile::tempdir().unwrap();
    let out = kubeadm(r.path())
        .args([
            "etcd",
            "snapshot",
            "save",
            "/backup/x.db",
            "--encryption-key-file",
        ])
        .arg(&key)
        .output()
        .unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("--encryption-key-file") && t.contains("not a text file"),
        "{t}"
    );
    assert!(
        !t.contains("stream did not contain") && !t.contains("permissions"),
        "{t}"
    );

    // The positional token of `token create` is no flag.
    let out = Command::cargo_bin("kubeadm")
        .unwrap()
        .args(["token", "create", "not-a-token"])
        .output()
        .unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("invalid token argument"), "{t}");
    assert!(!t.contains("flag --token"), "{t}");
}

/// Defect 8: a file where a directory belongs is named (not the file kubeadm wanted below it),
/// once, in the real run and the dry run alike.
#[test]
fn a_file_in_the_way_of_a_directory_is_named() {
    let r = tempfile::tempdir().unwrap();
    fs::create_dir_all(r.path().join("etc")).unwrap();
    fs::write(r.path().join("etc/kubernetes"), "x").unwrap();
    for dry in [false, true] {
        let mut args = vec!["certs", "ca"];
        if dry {
            args.push("--dry-run");
        }
        let out = phase(r.path(), &args);
        let t = text(&out);
        assert!(!out.status.success(), "{t}");
        assert!(
            t.contains("/etc/kubernetes is a file, not a directory"),
            "dry={dry}: {t}"
        );
        assert!(!t.contains("os error 20"), "dry={dry}: {t}");
        assert_eq!(t.matches("caused by").count(), 1, "dry={dry}: {t}");
    }
    let r = tempfile::tempdir().unwrap();
    fs::create_dir_all(r.path().join("var/lib")).unwrap();
    fs::write(r.path().join("var/lib/kubelet"), "x").unwrap();
    let out = phase(r.path(), &["kubelet-start"]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("/var/lib/kubelet is a file, not a directory"),
        "{t}"
    );
}

/// Defect 8: nothing to renew is not "Done renewing certificates"; an empty root's reset says
/// "No etcd config found" once.
#[test]
fn nothing_done_is_not_reported_as_done() {
    let r = tempfile::tempdir().unwrap();
    let out = kubeadm(r.path())
        .args(["certs", "renew", "all"])
        .output()
        .unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(!t.contains("Done renewing"), "{t}");
    assert!(t.contains("Nothing was renewed"), "{t}");
    let out = kubeadm(r.path()).args(["reset", "-f"]).output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert_eq!(
        t.matches("No etcd config found. Assuming external etcd")
            .count(),
        1,
        "{t}"
    );
}
