//! What every integration test of the binary shares: the `kubeadm` runner under a `--rootfs`,
//! and the lookup of peer programs (openssl, kubectl, etcd, curl), each checked with a
//! command that works for that tool (`kubectl version --client`, not `kubectl --version`).
//! A missing peer fails the test under `CI=true` and is reported as a skip otherwise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

/// How long one `kubeadm` run may take before the test fails.
pub const KUBEADM_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs the `kubeadm` binary of this build with `--rootfs root` and `args`.
pub fn kubeadm(root: &Path, args: &[&str]) -> Output {
    kubeadm_cmd(root)
        .args(args)
        .timeout(KUBEADM_TIMEOUT)
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubeadm {args:?}: {e}"))
}

/// The `kubeadm` command of this build with `--rootfs root`, for tests that add stdin,
/// environment or their own assertions.
pub fn kubeadm_cmd(root: &Path) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new(kubeadm_bin());
    c.arg("--rootfs").arg(root);
    c
}

/// The path of the `kubeadm` binary of this build (next to the test binary's directory).
pub fn kubeadm_bin() -> PathBuf {
    #[allow(deprecated)]
    assert_cmd::cargo::cargo_bin("kubeadm")
}

/// The arguments that make a peer print its version and exit 0.
pub fn check_args(name: &str) -> &'static [&'static str] {
    match name {
        "kubectl" => &["version", "--client"],
        "openssl" | "etcdctl" | "etcdutl" => &["version"],
        _ => &["--version"],
    }
}

/// Finds a peer program: `$env` when set (and existing), else `name` on PATH, and checks that
/// it runs (see [`check_args`]). Missing or broken: panics under `CI=true`, else prints why
/// the test skips that part and returns `None`.
pub fn peer(name: &str, env: Option<&str>) -> Option<PathBuf> {
    let from_env = env
        .and_then(std::env::var_os)
        .map(PathBuf::from)
        .filter(|p| p.exists());
    let found = from_env.or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    });
    let works = |p: &PathBuf| {
        Command::new(p)
            .args(check_args(name))
            .output()
            .is_ok_and(|o| o.status.success())
    };
    match found {
        Some(p) if works(&p) => Some(p),
        other => {
            let why = match other {
                Some(p) => format!(
                    "{} does not run (`{} {}` failed)",
                    p.display(),
                    name,
                    check_args(name).join(" ")
                ),
                None => format!(
                    "{name} not found{}",
                    env.map(|e| format!(" (set {e} or put it on PATH)"))
                        .unwrap_or_else(|| " on PATH".into())
                ),
            };
            if std::env::var_os("CI").is_some() {
                panic!("{why}; CI must run this test");
            }
            eprintln!("skipping: {why}");
            None
        }
    }
}

/// Every directory and file under `root`, files with their content and modification time:
/// two pictures compared show that a dry run changed nothing.
pub fn tree(root: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
                out.insert(p, (Vec::new(), SystemTime::UNIX_EPOCH));
            } else if p.is_file() {
                let m = std::fs::metadata(&p)
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                out.insert(p.clone(), (std::fs::read(&p).unwrap_or_default(), m));
            }
        }
    }
    out
}

/// Held by every test whose etcd members listen on etcd's fixed ports (2379, 2380) at the
/// loopback addresses 127.0.0.1–127.0.0.4 (the ports kubeadm itself dials), for the whole run:
/// two such clusters never run at once, whether in one test binary, in two, or in two
/// checkouts on the same machine. A file lock, so a test that dies releases it.
pub fn fixed_etcd_ports_lock() -> std::fs::File {
    let path = std::env::temp_dir().join("kubeadm-rs-tests-etcd-2379.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    file.lock()
        .unwrap_or_else(|e| panic!("locking {}: {e}", path.display()));
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_peer_is_checked_with_a_command_it_knows() {
        assert_eq!(check_args("kubectl"), ["version", "--client"]);
        assert_eq!(check_args("etcd"), ["--version"]);
        assert_eq!(check_args("openssl"), ["version"]);
    }

    #[test]
    fn a_missing_peer_is_none_outside_ci() {
        if std::env::var_os("CI").is_none() {
            assert!(peer("no-such-peer-kubeadm-rs", None).is_none());
        }
    }
}
