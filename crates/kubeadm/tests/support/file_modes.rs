//! The permission audit: every file and directory kubeadm left under a node's root, compared
//! with the mode upstream kubeadm gives it. The list follows the CIS Kubernetes Benchmark's file
//! items (1.1.x control-plane node, 4.1.x worker node); where the benchmark asks for less than
//! upstream gives (certificates and the kubelet's config.yaml 0644, not 0600), upstream wins, as
//! for a drop-in replacement, and the rule says so. Every entry must match a rule or be named as
//! written by someone else (the test kubelet, etcd, the test itself): a new file of ours without
//! a rule fails the audit, so the table stays complete.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What a rule is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
}

/// One expected mode: `pattern` is a path relative to the root whose last component may be
/// `*` or `*.ext`.
pub struct Rule {
    /// Relative path pattern.
    pub pattern: &'static str,
    /// Directory or file.
    pub kind: Kind,
    /// Upstream's mode.
    pub mode: u32,
    /// The benchmark item and where upstream sets the mode.
    pub why: &'static str,
}

const fn dir(pattern: &'static str, mode: u32, why: &'static str) -> Rule {
    Rule {
        pattern,
        kind: Kind::Dir,
        mode,
        why,
    }
}

const fn file(pattern: &'static str, mode: u32, why: &'static str) -> Rule {
    Rule {
        pattern,
        kind: Kind::File,
        mode,
        why,
    }
}

/// Upstream's modes for what init and join write (first match wins).
pub const RULES: &[Rule] = &[
    // Parents created on the way (MkdirAll with 0755 under umask 022).
    dir("etc", 0o755, "parent directory (MkdirAll 0755)"),
    dir("var", 0o755, "parent directory (MkdirAll 0755)"),
    dir("var/lib", 0o755, "parent directory (MkdirAll 0755)"),
    dir(
        "etc/kubernetes",
        0o755,
        "kubeconfig directory (clientcmd MkdirAll 0755)",
    ),
    dir(
        "etc/kubernetes/pki",
        0o755,
        "CIS 1.1.19 (root-owned); certutil/keyutil MkdirAll 0755",
    ),
    dir(
        "etc/kubernetes/pki/etcd",
        0o755,
        "CIS 1.1.19 (root-owned); certutil/keyutil MkdirAll 0755",
    ),
    dir(
        "etc/kubernetes/manifests",
        0o700,
        "WriteStaticPodToDisk MkdirAll 0700",
    ),
    dir("etc/kubernetes/tmp", 0o700, "kubeadm temp directory 0700"),
    dir(
        "var/lib/etcd",
        0o700,
        "CIS 1.1.11; etcd phase MkdirAll(dataDir, 0700)",
    ),
    dir(
        "var/lib/kubelet",
        0o700,
        "kubelet-start MkdirAll(kubeletDir, 0700)",
    ),
    // Static Pod manifests.
    file(
        "etc/kubernetes/manifests/*.yaml",
        0o600,
        "CIS 1.1.1/1.1.3/1.1.5/1.1.7; WriteStaticPodToDisk 0600",
    ),
    // Keys (sa.pub too: upstream writes it with keyutil.WriteKey).
    file(
        "etc/kubernetes/pki/*.key",
        0o600,
        "CIS 1.1.21; keyutil.WriteKey 0600",
    ),
    file(
        "etc/kubernetes/pki/etcd/*.key",
        0o600,
        "CIS 1.1.21; keyutil.WriteKey 0600",
    ),
    file(
        "etc/kubernetes/pki/sa.pub",
        0o600,
        "WritePublicKey through keyutil.WriteKey 0600",
    ),
    // Certificates: CIS 1.1.20/4.1.7 ask for 0600, upstream writes 0644 (certutil.WriteCert).
    file(
        "etc/kubernetes/pki/*.crt",
        0o644,
        "CIS 1.1.20/4.1.7 (upstream: certutil.WriteCert 0644)",
    ),
    file(
        "etc/kubernetes/pki/etcd/*.crt",
        0o644,
        "CIS 1.1.20 (upstream: certutil.WriteCert 0644)",
    ),
    // kubeconfig files.
    file(
        "etc/kubernetes/*.conf",
        0o600,
        "CIS 1.1.13/1.1.15/1.1.17/4.1.5; clientcmd.WriteToFile 0600",
    ),
    // The kubelet's files: CIS 4.1.9 asks 0600 for config.yaml, upstream writes 0644.
    file(
        "var/lib/kubelet/config.yaml",
        0o644,
        "CIS 4.1.9 (upstream: writeConfigBytesToDisk 0644)",
    ),
    file(
        "var/lib/kubelet/kubeadm-flags.env",
        0o644,
        "writeKubeletFlagBytesToDisk 0644",
    ),
    file(
        "var/lib/kubelet/instance-config.yaml",
        0o644,
        "writeConfigBytesToDisk 0644",
    ),
];

fn matches(pattern: &str, rel: &Path) -> bool {
    let rel = rel.to_string_lossy();
    let (pdir, pname) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    let (rdir, rname) = rel.rsplit_once('/').unwrap_or(("", &rel));
    if pdir != rdir {
        return false;
    }
    match pname.strip_prefix('*') {
        Some(ext) => rname.ends_with(ext),
        None => pname == rname,
    }
}

/// Every directory and file under `root` (links not followed), relative to it.
fn entries(root: &Path) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                stack.push(p.clone());
            }
            out.push((p.strip_prefix(root).unwrap().to_path_buf(), m));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Audits `root`: returns one line per entry whose mode or owner differs from upstream's, or
/// that no rule covers. `others` are relative paths (and everything below them) written by
/// someone else than kubeadm; `*.ext` names such files directly under the root (the test
/// kubelet's static Pod logs). Also returns how many entries were checked.
pub fn audit(root: &Path, others: &[&str]) -> (usize, Vec<String>) {
    let mut problems = Vec::new();
    let mut checked = 0;
    for (rel, meta) in entries(root) {
        let theirs = |o: &&str| match o.strip_prefix('*') {
            Some(ext) => {
                rel.parent() == Some(Path::new("")) && rel.to_string_lossy().ends_with(ext)
            }
            None => rel.starts_with(o),
        };
        if others.iter().any(theirs) {
            continue;
        }
        let kind = if meta.is_dir() {
            Kind::Dir
        } else if meta.is_file() {
            Kind::File
        } else {
            problems.push(format!("{}: neither file nor directory", rel.display()));
            continue;
        };
        let Some(rule) = RULES
            .iter()
            .find(|r| r.kind == kind && matches(r.pattern, &rel))
        else {
            problems.push(format!(
                "{}: no audit rule (add upstream's mode to RULES)",
                rel.display()
            ));
            continue;
        };
        checked += 1;
        let mode = meta.permissions().mode() & 0o7777;
        if mode != rule.mode {
            problems.push(format!(
                "{}: mode {mode:04o}, upstream {:04o} ({})",
                rel.display(),
                rule.mode,
                rule.why
            ));
        }
        // CIS 1.1.2/1.1.4/…/1.1.19/4.1.6: owned by root:root (the tests run as root; a
        // non-root run owns what it writes).
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me || (me == 0 && meta.gid() != 0) {
            problems.push(format!(
                "{}: owner {}:{}, want {me}:0",
                rel.display(),
                meta.uid(),
                meta.gid()
            ));
        }
    }
    (checked, problems)
}

#[test]
fn patterns_match_what_they_say() {
    assert!(matches(
        "etc/kubernetes/pki/*.key",
        Path::new("etc/kubernetes/pki/ca.key")
    ));
    assert!(!matches(
        "etc/kubernetes/pki/*.key",
        Path::new("etc/kubernetes/pki/etcd/ca.key")
    ));
    assert!(matches("var/lib", Path::new("var/lib")));
    assert!(!matches("var/lib", Path::new("var/lib/kubelet")));
}
