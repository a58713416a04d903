//! PKI and kubeconfig phases end to end: every certificate checked by `openssl` and x509-parser
//! against the table, kubeconfigs read by `kubectl`, reuse, tamper detection, dry-run, and real
//! etcd members serving with our certificates.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Std, Stdio};
use std::time::{Duration, Instant, SystemTime};

use assert_cmd::Command;
use kubeadm_pki::CertInfo;
use kubeadm_pki::table::{self, CommonName, SanRule, Usage};

const VERSION: &str = "v1.33.0";

fn kubeadm(root: &Path) -> Command {
    let mut c = Command::cargo_bin("kubeadm").unwrap();
    c.arg("--rootfs").arg(root);
    c
}

fn phase(root: &Path, group: &str, node: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
    kubeadm(root)
        .args([
            "init",
            "phase",
            group,
            "all",
            "--apiserver-advertise-address",
            "127.0.0.1",
            "--node-name",
            node,
            "--kubernetes-version",
            VERSION,
        ])
        .args(extra)
        .assert()
}

fn pki(root: &Path) -> PathBuf {
    root.join("etc/kubernetes/pki")
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Std::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn snapshot(root: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let m = std::fs::metadata(&p).unwrap().modified().unwrap();
                out.insert(p.clone(), (std::fs::read(&p).unwrap(), m));
            }
        }
    }
    out
}

fn full_pki(node: &str, extra: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    phase(dir.path(), "certs", node, extra).success();
    phase(dir.path(), "kubeconfig", node, extra).success();
    dir
}

#[test]
fn every_certificate_matches_the_table_for_openssl_and_x509_parser() {
    if peer("openssl", None).is_none() {
        return;
    }
    let dir = full_pki(
        "node-a",
        &[
            "--apiserver-cert-extra-sans",
            "10.0.0.9,api.example.com",
            "--control-plane-endpoint",
            "cp.example.com:6443",
        ],
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for spec in table::CERTS {
        let crt = pki(dir.path()).join(spec.cert_file());
        let key = pki(dir.path()).join(spec.key_file());
        let ca = pki(dir.path()).join(table::ca_of(spec).cert_file());
        let (ok, out) = openssl(&[
            "verify",
            "-CAfile",
            ca.to_str().unwrap(),
            crt.to_str().unwrap(),
        ]);
        assert!(ok, "{}: {out}", spec.name);
        assert!(
            std::fs::read_to_string(&key)
                .unwrap()
                .starts_with("-----BEGIN RSA PRIVATE KEY-----\n")
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600,
            "{}",
            spec.name
        );
        assert_eq!(
            std::fs::metadata(&crt).unwrap().permissions().mode() & 0o777,
            0o644,
            "{}",
            spec.name
        );

        let cn = match spec.cn {
            CommonName::Fixed(n) => n,
            CommonName::NodeName => "node-a",
        };
        // x509-parser
        let info = CertInfo::from_pem("t", &std::fs::read_to_string(&crt).unwrap()).unwrap();
        assert_eq!(info.cn, cn, "{}", spec.name);
        assert_eq!(info.orgs, spec.orgs, "{}", spec.name);
        assert_eq!(info.is_ca, spec.is_ca(), "{}", spec.name);
        let want_eku = match spec.usage {
            Usage::Ca => (false, false),
            Usage::Server => (true, false),
            Usage::Client => (false, true),
            Usage::ServerClient => (true, true),
        };
        assert_eq!(info.eku, want_eku, "{}", spec.name);
        let years = if spec.is_ca() { 10 } else { 1 };
        let life = info.not_after - now;
        assert!(
            (life - years * 365 * 86400).abs() < 120,
            "{}: lifetime {life}",
            spec.name
        );
        assert!(
            now - info.not_before >= 299,
            "{}: NotBefore back-dated",
            spec.name
        );
        assert!(info.serial[0] & 0x80 == 0, "positive serial");
        let der = &info.der;
        let (_, x) = x509_parser::parse_x509_certificate(der).unwrap();
        let ku = x.key_usage().unwrap().unwrap().value;
        assert!(
            ku.digital_signature() && ku.key_encipherment(),
            "{}",
            spec.name
        );
        assert_eq!(ku.key_cert_sign(), spec.is_ca(), "{}", spec.name);

        // openssl x509 -text
        let (_, text) = openssl(&["x509", "-in", crt.to_str().unwrap(), "-noout", "-text"]);
        let subject = text
            .lines()
            .find(|l| l.trim_start().starts_with("Subject:"))
            .unwrap()
            .trim()
            .to_string();
        let want_subject = if spec.orgs.is_empty() {
            format!("Subject: CN = {cn}")
        } else {
            format!("Subject: O = {}, CN = {cn}", spec.orgs.join(", O = "))
        };
        assert_eq!(subject, want_subject, "{}", spec.name);
        assert_eq!(text.contains("CA:TRUE"), spec.is_ca(), "{}", spec.name);
        assert!(
            text.contains("Certificate Sign") == spec.is_ca(),
            "{}",
            spec.name
        );
        for eku in spec.usage.eku_names() {
            assert!(text.contains(eku), "{}: {eku}", spec.name);
        }
        let san_line = text
            .lines()
            .skip_while(|l| !l.contains("Subject Alternative Name"))
            .nth(1)
            .map(|l| l.trim().to_string())
            .unwrap_or_default();
        let want_sans: Vec<&str> = match spec.sans {
            SanRule::None => vec![],
            SanRule::CommonName => vec![],
            SanRule::ApiServer => vec![
                "DNS:cp.example.com",
                "DNS:api.example.com",
                "DNS:kubernetes",
                "DNS:kubernetes.default",
                "DNS:kubernetes.default.svc",
                "DNS:kubernetes.default.svc.cluster.local",
                "DNS:node-a",
                "IP Address:10.96.0.1",
                "IP Address:127.0.0.1",
                "IP Address:10.0.0.9",
            ],
            SanRule::EtcdServer | SanRule::EtcdPeer => vec![
                "DNS:localhost",
                "DNS:node-a",
                "IP Address:127.0.0.1",
                "IP Address:0:0:0:0:0:0:0:1",
            ],
        };
        match spec.sans {
            SanRule::None => assert!(
                san_line.is_empty() || !text.contains("Subject Alternative Name"),
                "{}",
                spec.name
            ),
            SanRule::CommonName => assert_eq!(san_line, format!("DNS:{cn}"), "{}", spec.name),
            _ => {
                let got: Vec<&str> = san_line.split(", ").collect();
                let mut sorted_want = want_sans.clone();
                sorted_want.sort();
                let mut sorted_got = got.clone();
                sorted_got.sort();
                assert_eq!(sorted_got, sorted_want, "{}", spec.name);
                assert_eq!(
                    info.alt.ips.len(),
                    got.iter().filter(|s| s.starts_with("IP")).count()
                );
            }
        }
        if spec.sans == SanRule::ApiServer {
            // Upstream order: DNS sorted, then IPs in rule order.
            assert_eq!(
                san_line,
                "DNS:api.example.com, DNS:cp.example.com, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local, DNS:node-a, IP Address:10.96.0.1, IP Address:127.0.0.1, IP Address:10.0.0.9"
            );
        }
    }
    // Discovery hash: SHA-256 of the CA's DER SubjectPublicKeyInfo, as openssl computes it.
    let ca_path = pki(dir.path()).join("ca.crt");
    let spki = Std::new("sh")
        .arg("-c")
        .arg(format!("openssl x509 -in {} -noout -pubkey | openssl pkey -pubin -outform der | openssl dgst -sha256 -r", ca_path.display()))
        .output()
        .unwrap();
    let want = String::from_utf8_lossy(&spki.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let ca_info = CertInfo::from_pem("ca", &std::fs::read_to_string(&ca_path).unwrap()).unwrap();
    assert_eq!(
        kubeadm_pki::ca_cert_hash(&ca_info),
        format!("sha256:{want}")
    );
    // sa pair
    let sa_pub = std::fs::read_to_string(pki(dir.path()).join("sa.pub")).unwrap();
    assert!(sa_pub.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    let (ok, derived) = openssl(&[
        "pkey",
        "-in",
        pki(dir.path()).join("sa.key").to_str().unwrap(),
        "-pubout",
    ]);
    assert!(
        ok && derived == sa_pub,
        "sa.pub is the public half of sa.key"
    );
}

#[test]
fn kubectl_reads_every_kubeconfig() {
    if peer("kubectl", None).is_none() || peer("openssl", None).is_none() {
        return;
    }
    let dir = full_pki(
        "node-k",
        &["--control-plane-endpoint", "cp.example.com:7443"],
    );
    let cases = [
        (
            "admin.conf",
            "kubernetes-admin",
            "O = kubeadm:cluster-admins, CN = kubernetes-admin",
            "https://cp.example.com:7443",
        ),
        (
            "super-admin.conf",
            "kubernetes-super-admin",
            "O = system:masters, CN = kubernetes-super-admin",
            "https://cp.example.com:7443",
        ),
        (
            "kubelet.conf",
            "system:node:node-k",
            "O = system:nodes, CN = system:node:node-k",
            "https://cp.example.com:7443",
        ),
        (
            "controller-manager.conf",
            "system:kube-controller-manager",
            "CN = system:kube-controller-manager",
            "https://127.0.0.1:6443",
        ),
        (
            "scheduler.conf",
            "system:kube-scheduler",
            "CN = system:kube-scheduler",
            "https://127.0.0.1:6443",
        ),
    ];
    for (file, user, subject, server) in cases {
        let path = dir.path().join("etc/kubernetes").join(file);
        let q = |jp: &str| {
            let out = Std::new("kubectl")
                .args([
                    "config",
                    "view",
                    "--raw",
                    "--kubeconfig",
                    path.to_str().unwrap(),
                    "-o",
                    &format!("jsonpath={jp}"),
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{file}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(
            q("{.current-context}"),
            format!("{user}@kubernetes"),
            "{file}"
        );
        assert_eq!(q("{.contexts[0].context.user}"), user);
        assert_eq!(q("{.clusters[0].name}"), "kubernetes");
        assert_eq!(q("{.clusters[0].cluster.server}"), server, "{file}");
        use base64::Engine;
        let cert = base64::engine::general_purpose::STANDARD
            .decode(q("{.users[0].user.client-certificate-data}"))
            .unwrap();
        let tmp = dir.path().join("client.crt");
        std::fs::write(&tmp, &cert).unwrap();
        let (ok, out) = openssl(&[
            "verify",
            "-CAfile",
            pki(dir.path()).join("ca.crt").to_str().unwrap(),
            tmp.to_str().unwrap(),
        ]);
        assert!(ok, "{file}: {out}");
        let (_, subj) = openssl(&["x509", "-in", tmp.to_str().unwrap(), "-noout", "-subject"]);
        assert_eq!(subj.trim(), format!("subject={subject}"), "{file}");
        let ca_data = base64::engine::general_purpose::STANDARD
            .decode(q("{.clusters[0].cluster.certificate-authority-data}"))
            .unwrap();
        assert_eq!(
            ca_data,
            std::fs::read(pki(dir.path()).join("ca.crt")).unwrap()
        );
    }
    // Before 1.29: no super-admin, admin is system:masters.
    let old = tempfile::tempdir().unwrap();
    for g in ["certs", "kubeconfig"] {
        kubeadm(old.path())
            .args([
                "init",
                "phase",
                g,
                "all",
                "--apiserver-advertise-address",
                "127.0.0.1",
                "--node-name",
                "n",
                "--kubernetes-version",
                "v1.28.0",
            ])
            .assert()
            .success();
    }
    assert!(!old.path().join("etc/kubernetes/super-admin.conf").exists());
    let admin = kubeadm_pki::kubeconfig::parse(
        "a",
        &std::fs::read_to_string(old.path().join("etc/kubernetes/admin.conf")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        CertInfo::from_pem("a", &admin.client_cert_pem)
            .unwrap()
            .orgs,
        vec!["system:masters"]
    );
}

#[test]
fn second_run_changes_nothing_and_tampering_is_an_error() {
    let dir = full_pki("node-i", &[]);
    let before = snapshot(dir.path());
    std::thread::sleep(Duration::from_millis(20));
    phase(dir.path(), "certs", "node-i", &[])
        .success()
        .stdout(predicates::str::contains(
            "Using existing ca certificate authority",
        ));
    phase(dir.path(), "kubeconfig", "node-i", &[])
        .success()
        .stdout(predicates::str::contains("Using existing kubeconfig file"));
    assert_eq!(
        before,
        snapshot(dir.path()),
        "a second run must not touch any file"
    );

    // A certificate from another CA.
    let other = full_pki("node-i", &[]);
    std::fs::copy(
        pki(other.path()).join("apiserver.crt"),
        pki(dir.path()).join("apiserver.crt"),
    )
    .unwrap();
    std::fs::copy(
        pki(other.path()).join("apiserver.key"),
        pki(dir.path()).join("apiserver.key"),
    )
    .unwrap();
    std::fs::remove_file(pki(dir.path()).join("front-proxy-client.crt")).unwrap();
    std::fs::remove_file(pki(dir.path()).join("front-proxy-client.key")).unwrap();
    let tampered = snapshot(dir.path());
    phase(dir.path(), "certs", "node-i", &[]).failure().stderr(
        predicates::str::contains("apiserver.crt")
            .and(predicates::str::contains("not signed by the current CA")),
    );
    assert_eq!(
        tampered,
        snapshot(dir.path()),
        "nothing is written when a file is bad (front-proxy-client not regenerated)"
    );

    // A missing SAN: the same CA but another advertise address is required now.
    let dir2 = full_pki("node-i", &[]);
    kubeadm(dir2.path())
        .args([
            "init",
            "phase",
            "certs",
            "apiserver",
            "--apiserver-advertise-address",
            "127.0.0.2",
            "--node-name",
            "node-i",
            "--kubernetes-version",
            VERSION,
        ])
        .assert()
        .failure()
        .stderr(
            predicates::str::contains("apiserver.crt")
                .and(predicates::str::contains("IP:127.0.0.2")),
        );

    // A garbled file.
    std::fs::write(pki(dir2.path()).join("etcd/peer.crt"), "garbage").unwrap();
    phase(dir2.path(), "certs", "node-i", &[])
        .failure()
        .stderr(predicates::str::contains("etcd/peer.crt"));
}

use kubeadm_testapi::support::peer;
use predicates::prelude::PredicateBooleanExt;

#[test]
fn dry_run_writes_nothing_and_prints_no_key_material() {
    let dir = tempfile::tempdir().unwrap();
    let out = phase(dir.path(), "certs", "n", &["--dry-run"])
        .success()
        .get_output()
        .stdout
        .clone();
    let out2 = phase(dir.path(), "kubeconfig", "n", &["--dry-run"])
        .get_output()
        .stdout
        .clone();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&out2)
    );
    assert!(
        text.contains("ca.key") && text.contains("RSA-2048 private key"),
        "{text}"
    );
    assert!(
        !text.contains("PRIVATE KEY-----"),
        "no key PEM in dry-run output"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
    // One dry run of both groups together shows redacted kubeconfigs.
    let all = kubeadm(dir.path())
        .args([
            "init",
            "--dry-run",
            "--apiserver-advertise-address",
            "127.0.0.1",
            "--node-name",
            "n",
            "--kubernetes-version",
            VERSION,
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let all = String::from_utf8_lossy(&all);
    assert!(
        all.contains("client-key-data: REDACTED")
            && !all.contains("PRIVATE KEY-----")
            && !all.contains("LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVk"),
        "{all}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn ecdsa_keys_and_external_ca_mode() {
    if peer("openssl", None).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("kubeadm.yaml");
    std::fs::write(
        &cfg,
        format!("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 127.0.0.1\nnodeRegistration:\n  name: ec\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: {VERSION}\nencryptionAlgorithm: ECDSA-P256\ncertificateValidityPeriod: 48h\netcd:\n  local:\n    serverCertSANs: [etcd.example.com, 10.1.1.1]\n"),
    )
    .unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    for g in ["certs", "kubeconfig"] {
        kubeadm(&root)
            .args(["init", "phase", g, "all", "--config", cfg.to_str().unwrap()])
            .assert()
            .success();
    }
    let key = std::fs::read_to_string(pki(&root).join("apiserver.key")).unwrap();
    assert!(key.starts_with("-----BEGIN EC PRIVATE KEY-----\n"), "{key}");
    let (ok, out) = openssl(&[
        "ec",
        "-in",
        pki(&root).join("apiserver.key").to_str().unwrap(),
        "-noout",
        "-text",
    ]);
    assert!(ok && out.contains("prime256v1"), "{out}");
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        pki(&root).join("etcd/ca.crt").to_str().unwrap(),
        pki(&root).join("etcd/server.crt").to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let server = CertInfo::from_pem(
        "s",
        &std::fs::read_to_string(pki(&root).join("etcd/server.crt")).unwrap(),
    )
    .unwrap();
    assert!(
        server.alt.dns.contains(&"etcd.example.com".to_string())
            && server.alt.ips.contains(&"10.1.1.1".parse().unwrap())
    );
    assert!(
        (server.not_after - server.not_before - 48 * 3600).abs() < 400,
        "validity period from the config"
    );

    // External CA: without ca.key every leaf must exist; reuse works, a missing one is an error.
    std::fs::remove_file(pki(&root).join("ca.key")).unwrap();
    for g in ["certs", "kubeconfig"] {
        kubeadm(&root)
            .args(["init", "phase", g, "all", "--config", cfg.to_str().unwrap()])
            .assert()
            .success();
    }
    std::fs::remove_file(pki(&root).join("apiserver.crt")).unwrap();
    std::fs::remove_file(pki(&root).join("apiserver.key")).unwrap();
    kubeadm(&root)
        .args([
            "init",
            "phase",
            "certs",
            "all",
            "--config",
            cfg.to_str().unwrap(),
        ])
        .assert()
        .failure()
        .stderr(
            predicates::str::contains("external CA mode")
                .and(predicates::str::contains("apiserver.crt")),
        );
}

// ---------- real etcd ----------

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn etcd_bins() -> Option<(PathBuf, PathBuf)> {
    let etcd = peer("etcd", Some("KUBEADM_TEST_ETCD"))?;
    let ctl = etcd.with_file_name("etcdctl");
    let ctl = if ctl.exists() {
        ctl
    } else {
        peer("etcdctl", None)?
    };
    Some((etcd, ctl))
}

struct Member {
    name: String,
    client: u16,
    peer: u16,
    pki: PathBuf,
}

fn start_member(etcd: &Path, m: &Member, cluster: &str, data: &Path) -> Proc {
    let p = |f: &str| m.pki.join(f).to_str().unwrap().to_string();
    let child = Std::new(etcd)
        .args([
            &format!("--name={}", m.name),
            &format!("--data-dir={}", data.display()),
            &format!("--listen-client-urls=https://127.0.0.1:{}", m.client),
            &format!("--advertise-client-urls=https://127.0.0.1:{}", m.client),
            &format!("--listen-peer-urls=https://127.0.0.1:{}", m.peer),
            &format!("--initial-advertise-peer-urls=https://127.0.0.1:{}", m.peer),
            &format!("--initial-cluster={cluster}"),
            "--initial-cluster-state=new",
            "--client-cert-auth=true",
            &format!("--trusted-ca-file={}", p("etcd/ca.crt")),
            &format!("--cert-file={}", p("etcd/server.crt")),
            &format!("--key-file={}", p("etcd/server.key")),
            "--peer-client-cert-auth=true",
            &format!("--peer-trusted-ca-file={}", p("etcd/ca.crt")),
            &format!("--peer-cert-file={}", p("etcd/peer.crt")),
            &format!("--peer-key-file={}", p("etcd/peer.key")),
            "--listen-metrics-urls=http://127.0.0.1:0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start etcd");
    Proc(child)
}

fn etcdctl(
    ctl: &Path,
    endpoint: &str,
    ca: &Path,
    cert: &Path,
    key: &Path,
    args: &[&str],
) -> (bool, String) {
    let out = Std::new(ctl)
        .env("ETCDCTL_API", "3")
        .args([
            &format!("--endpoints={endpoint}"),
            &format!("--cacert={}", ca.display()),
            &format!("--cert={}", cert.display()),
            &format!("--key={}", key.display()),
            "--dial-timeout=3s",
            "--command-timeout=5s",
        ])
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

fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    false
}

#[test]
fn real_etcd_serves_with_our_certificates_and_refuses_another_ca() {
    let Some((etcd, ctl)) = etcd_bins() else {
        return;
    };
    let dir = full_pki("etcd-one", &[]);
    let m = Member {
        name: "etcd-one".into(),
        client: free_port(),
        peer: free_port(),
        pki: pki(dir.path()),
    };
    let data = dir.path().join("data");
    let _p = start_member(
        &etcd,
        &m,
        &format!("etcd-one=https://127.0.0.1:{}", m.peer),
        &data,
    );
    let ep = format!("https://127.0.0.1:{}", m.client);
    let ca = m.pki.join("etcd/ca.crt");
    for client in ["etcd/healthcheck-client", "apiserver-etcd-client"] {
        let crt = m.pki.join(format!("{client}.crt"));
        let key = m.pki.join(format!("{client}.key"));
        assert!(
            wait_until(|| etcdctl(&ctl, &ep, &ca, &crt, &key, &["endpoint", "health"]).0),
            "{client}: {}",
            etcdctl(&ctl, &ep, &ca, &crt, &key, &["endpoint", "health"]).1
        );
        let (ok, out) = etcdctl(&ctl, &ep, &ca, &crt, &key, &["put", "k", "v"]);
        assert!(ok, "{out}");
    }
    // A client certificate from another cluster's etcd CA is refused.
    let other = full_pki("etcd-one", &[]);
    let (ok, out) = etcdctl(
        &ctl,
        &ep,
        &ca,
        &pki(other.path()).join("apiserver-etcd-client.crt"),
        &pki(other.path()).join("apiserver-etcd-client.key"),
        &["put", "k", "v"],
    );
    assert!(!ok, "a foreign client certificate must be refused: {out}");
}

#[test]
fn three_etcd_members_form_a_cluster_with_our_peer_certificates() {
    let Some((etcd, ctl)) = etcd_bins() else {
        return;
    };
    // One CA, three "nodes": copy the etcd CA into each node's root before its certs phase.
    let base = full_pki("node-0", &[]);
    let mut roots = vec![];
    let mut members = vec![];
    for i in 0..3 {
        let name = format!("node-{i}");
        let root = if i == 0 {
            base.path().to_path_buf()
        } else {
            let r = base.path().join(format!("n{i}"));
            std::fs::create_dir_all(pki(&r).join("etcd")).unwrap();
            for f in [
                "ca.crt",
                "ca.key",
                "etcd/ca.crt",
                "etcd/ca.key",
                "front-proxy-ca.crt",
                "front-proxy-ca.key",
            ] {
                std::fs::copy(pki(base.path()).join(f), pki(&r).join(f)).unwrap();
            }
            phase(&r, "certs", &name, &[])
                .success()
                .stdout(predicates::str::contains(
                    "Using existing etcd/ca certificate authority",
                ));
            r
        };
        members.push(Member {
            name,
            client: free_port(),
            peer: free_port(),
            pki: pki(&root),
        });
        roots.push(root);
    }
    let cluster = members
        .iter()
        .map(|m| format!("{}=https://127.0.0.1:{}", m.name, m.peer))
        .collect::<Vec<_>>()
        .join(",");
    let _procs: Vec<Proc> = members
        .iter()
        .enumerate()
        .map(|(i, m)| start_member(&etcd, m, &cluster, &base.path().join(format!("data{i}"))))
        .collect();
    let ca = members[0].pki.join("etcd/ca.crt");
    let crt = members[0].pki.join("etcd/healthcheck-client.crt");
    let key = members[0].pki.join("etcd/healthcheck-client.key");
    let eps = members
        .iter()
        .map(|m| format!("https://127.0.0.1:{}", m.client))
        .collect::<Vec<_>>()
        .join(",");
    assert!(
        wait_until(|| etcdctl(&ctl, &eps, &ca, &crt, &key, &["endpoint", "health"]).0),
        "cluster health: {}",
        etcdctl(&ctl, &eps, &ca, &crt, &key, &["endpoint", "health"]).1
    );
    let (ok, out) = etcdctl(&ctl, &eps, &ca, &crt, &key, &["member", "list"]);
    assert!(ok, "{out}");
    assert_eq!(
        out.lines().filter(|l| l.contains("started")).count(),
        3,
        "{out}"
    );
}

fn expiration(root: &Path) -> serde_json::Value {
    let out = kubeadm(root)
        .args(["certs", "check-expiration", "-o", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn renew_all_gives_new_expiry_and_certificates_still_verify() {
    if peer("openssl", None).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("short.yaml");
    // Short leaves first, so that renewal with the default period visibly moves the expiry.
    std::fs::write(&cfg, format!("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 127.0.0.1\nnodeRegistration:\n  name: rn\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: {VERSION}\ncertificateValidityPeriod: 24h\n")).unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    for g in ["certs", "kubeconfig"] {
        kubeadm(&root)
            .args(["init", "phase", g, "all", "--config", cfg.to_str().unwrap()])
            .assert()
            .success();
    }
    let before = expiration(&root);
    let certs = before["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 11, "{before}");
    assert!(
        certs
            .iter()
            .all(|c| c["residualTime"].as_i64().unwrap() < 25 * 3600 * 1_000_000_000),
        "{before}"
    );
    let text = kubeadm(&root)
        .args(["certs", "check-expiration"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains("CERTIFICATE AUTHORITY   EXPIRES")
            && text.contains("apiserver-etcd-client")
            && (text.contains("23h") || text.contains(" 1d ")),
        "{text}"
    );

    let old_server = std::fs::read_to_string(pki(&root).join("etcd/server.crt")).unwrap();
    kubeadm(&root)
        .args(["certs", "renew", "all"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "certificate embedded in the kubeconfig file admin.conf renewed",
        ));
    let after = expiration(&root);
    for c in after["certificates"].as_array().unwrap() {
        let r = c["residualTime"].as_i64().unwrap();
        assert!(
            r > 300 * 86400 * 1_000_000_000,
            "renewed with the default one year: {c}"
        );
    }
    let new_server = std::fs::read_to_string(pki(&root).join("etcd/server.crt")).unwrap();
    assert_ne!(old_server, new_server);
    let (o, n) = (
        CertInfo::from_pem("o", &old_server).unwrap(),
        CertInfo::from_pem("n", &new_server).unwrap(),
    );
    assert_eq!(
        (o.cn.clone(), o.orgs.clone(), o.alt.clone(), o.eku),
        (n.cn.clone(), n.orgs.clone(), n.alt.clone(), n.eku),
        "same subject, names, usages"
    );
    for spec in table::CERTS {
        let ca = pki(&root).join(table::ca_of(spec).cert_file());
        let (ok, out) = openssl(&[
            "verify",
            "-CAfile",
            ca.to_str().unwrap(),
            pki(&root).join(spec.cert_file()).to_str().unwrap(),
        ]);
        assert!(ok, "{out}");
    }
    // The phases accept the renewed files as they are.
    let snap = snapshot(&root);
    for g in ["certs", "kubeconfig"] {
        kubeadm(&root)
            .args(["init", "phase", g, "all", "--config", cfg.to_str().unwrap()])
            .assert()
            .success();
    }
    assert_eq!(snap, snapshot(&root));

    // External CA: refuse with a clear message and write nothing.
    std::fs::remove_file(pki(&root).join("front-proxy-ca.key")).unwrap();
    let snap = snapshot(&root);
    kubeadm(&root)
        .args(["certs", "renew", "all"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("external CA mode"));
    assert_eq!(snap, snapshot(&root));
    assert_eq!(
        expiration(&root)["certificateAuthorities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "front-proxy-ca")
            .unwrap()["externallyManaged"],
        true
    );
}

#[test]
fn kubeconfig_user_and_generate_csr() {
    if peer("openssl", None).is_none() || peer("kubectl", None).is_none() {
        return;
    }
    let dir = full_pki("u", &[]);
    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncontrolPlaneEndpoint: lb.example.com\n").unwrap();
    let out = kubeadm(dir.path())
        .args([
            "kubeconfig",
            "user",
            "--client-name",
            "jane",
            "--org",
            "devs,ops",
            "--validity-period",
            "2h",
            "--config",
            cfg.to_str().unwrap(),
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let file = dir.path().join("jane.conf");
    std::fs::write(&file, &out).unwrap();
    let o = Std::new("kubectl")
        .args([
            "config",
            "view",
            "--raw",
            "--kubeconfig",
            file.to_str().unwrap(),
            "-o",
            "jsonpath={.current-context} {.clusters[0].cluster.server}",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "jane@kubernetes https://lb.example.com:6443"
    );
    let parsed = kubeadm_pki::kubeconfig::parse("j", &String::from_utf8(out).unwrap()).unwrap();
    let c = CertInfo::from_pem("j", &parsed.client_cert_pem).unwrap();
    assert_eq!(
        (c.cn.as_str(), c.orgs.clone()),
        ("jane", vec!["devs".to_string(), "ops".to_string()])
    );
    assert!(c.not_after - c.not_before < 3 * 3600);

    let csr_root = tempfile::tempdir().unwrap();
    let ccfg = csr_root.path().join("c.yaml");
    std::fs::write(&ccfg, format!("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 127.0.0.1\nnodeRegistration:\n  name: csr\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: {VERSION}\n")).unwrap();
    kubeadm(csr_root.path())
        .args(["certs", "generate-csr", "--config", ccfg.to_str().unwrap()])
        .assert()
        .success();
    let csr = csr_root.path().join("etc/kubernetes/pki/apiserver.csr");
    let (ok, text) = openssl(&[
        "req",
        "-in",
        csr.to_str().unwrap(),
        "-noout",
        "-text",
        "-verify",
    ]);
    assert!(
        ok && text.contains("CN = kube-apiserver")
            && text.contains("DNS:kubernetes.default.svc.cluster.local"),
        "{text}"
    );
    assert!(
        csr_root
            .path()
            .join("etc/kubernetes/admin.conf.csr")
            .exists()
    );
}

#[test]
fn ipv6_and_dual_stack_names() {
    let dir = tempfile::tempdir().unwrap();
    for g in ["certs", "kubeconfig"] {
        kubeadm(dir.path())
            .args([
                "init",
                "phase",
                g,
                "all",
                "--apiserver-advertise-address",
                "fd00::10",
                "--node-name",
                "v6",
            ])
            .args([
                "--service-cidr",
                "fd00:10:96::/112,10.96.0.0/12",
                "--kubernetes-version",
                VERSION,
            ])
            .assert()
            .success();
    }
    let read = |f: &str| {
        CertInfo::from_pem(
            f,
            &std::fs::read_to_string(pki(dir.path()).join(f)).unwrap(),
        )
        .unwrap()
    };
    let ips = |c: &CertInfo| c.alt.ips.iter().map(|i| i.to_string()).collect::<Vec<_>>();
    assert_eq!(
        ips(&read("apiserver.crt")),
        vec!["fd00:10:96::1", "fd00::10"],
        "first IP of the first service CIDR, then the advertise address"
    );
    assert_eq!(
        ips(&read("etcd/server.crt")),
        vec!["fd00::10", "127.0.0.1", "::1"]
    );
    let admin = kubeadm_pki::kubeconfig::parse(
        "a",
        &std::fs::read_to_string(dir.path().join("etc/kubernetes/admin.conf")).unwrap(),
    )
    .unwrap();
    assert_eq!(admin.server, "https://[fd00::10]:6443");
}

#[test]
fn cert_dir_flag_and_local_kubelet_mode() {
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--cert-dir",
        "/srv/pki",
        "--control-plane-endpoint",
        "lb.example.com",
        "--feature-gates",
        "ControlPlaneKubeletLocalMode=true",
    ];
    phase(dir.path(), "certs", "cd", &flags)
        .success()
        .stdout(predicates::str::contains(
            "Using certificateDir folder \"/srv/pki\"",
        ));
    phase(dir.path(), "kubeconfig", "cd", &flags).success();
    assert!(
        dir.path().join("srv/pki/etcd/peer.crt").exists()
            && !dir.path().join("etc/kubernetes/pki").exists()
    );
    let server = |f: &str| {
        kubeadm_pki::kubeconfig::parse(
            f,
            &std::fs::read_to_string(dir.path().join("etc/kubernetes").join(f)).unwrap(),
        )
        .unwrap()
        .server
    };
    assert_eq!(server("kubelet.conf"), "https://127.0.0.1:6443");
    assert_eq!(server("admin.conf"), "https://lb.example.com:6443");
    let out = kubeadm(dir.path())
        .args([
            "certs",
            "check-expiration",
            "--cert-dir",
            "/srv/pki",
            "-o",
            "yaml",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8_lossy(&out);
    assert!(
        out.contains("kind: CertificateExpirationInfo") && !out.contains("missing"),
        "{out}"
    );
}
