//! Opt-in real control plane for tests: when `KUBEADM_TEST_BIN_DIR` holds `etcd`,
//! `kube-apiserver`, `kube-controller-manager` and `kube-scheduler`, start them as processes
//! from the command lines of the static Pod manifests kubeadm wrote under a `--rootfs`, with
//! every absolute path in a flag resolved under that root (so they use our PKI and
//! kubeconfigs). Without the variable, [`RealBins::from_env`] says why, for the test to print.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The environment variable naming the folder with the binaries.
pub const BIN_DIR_ENV: &str = "KUBEADM_TEST_BIN_DIR";

/// The binaries needed, in start order (etcd first: the API server needs it).
pub const BINARIES: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

/// Why the real control plane could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum RealBinsError {
    /// A manifest could not be read or has no command.
    #[error("manifest {path}: {detail}")]
    Manifest {
        /// The manifest's path.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A process could not be started.
    #[error("cannot start {binary}: {source}")]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A process exited early.
    #[error("{component} exited with {status}; its output is in {log}")]
    Exited {
        /// Which component.
        component: String,
        /// How it ended.
        status: String,
        /// Where its stdout/stderr went.
        log: PathBuf,
    },
}

/// A folder holding the four binaries.
#[derive(Debug, Clone)]
pub struct RealBins {
    /// The folder.
    pub dir: PathBuf,
}

impl RealBins {
    /// The binaries from `KUBEADM_TEST_BIN_DIR`, or why that variant cannot run (unset, or
    /// missing/non-executable binaries), for the test to print when it skips.
    pub fn from_env() -> Result<RealBins, String> {
        let Some(dir) = std::env::var_os(BIN_DIR_ENV) else {
            return Err(format!(
                "{BIN_DIR_ENV} is not set (point it at a folder with {} to run against real binaries)",
                BINARIES.join(", ")
            ));
        };
        let dir = PathBuf::from(dir);
        let missing: Vec<&str> = BINARIES
            .iter()
            .copied()
            .filter(|b| !is_executable(&dir.join(b)))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "{BIN_DIR_ENV}={} lacks executable {}",
                dir.display(),
                missing.join(", ")
            ));
        }
        Ok(RealBins { dir })
    }
}

impl RealBins {
    /// The binaries for a real-binary test variant, which is `#[ignore]`d and run with
    /// `--include-ignored`: `None` (the test says it skips) when `KUBEADM_TEST_BIN_DIR` is unset;
    /// a panic when it is set but unusable, so a run that asked for real binaries never passes
    /// without them (under `CI=true` and anywhere else).
    pub fn for_test(what: &str) -> Option<RealBins> {
        match Self::from_env() {
            Ok(b) => Some(b),
            Err(why) if std::env::var_os(BIN_DIR_ENV).is_some() => {
                panic!("{what} cannot run against real binaries: {why}")
            }
            Err(why) => {
                eprintln!("skipping {what}: {why}");
                None
            }
        }
    }

    /// The minor of [`RealBins::kubernetes_version`].
    pub fn minor(&self) -> Option<u32> {
        let v = self.kubernetes_version()?;
        v.strip_prefix("v1.")?.split('.').next()?.parse().ok()
    }

    /// The Kubernetes version of the binaries (`kube-apiserver --version` prints
    /// `Kubernetes v1.34.1`), so the test deploys the version they are.
    pub fn kubernetes_version(&self) -> Option<String> {
        let out = Command::new(self.dir.join("kube-apiserver"))
            .arg("--version")
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .find(|w| w.starts_with("v1."))
            .map(str::to_string)
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A flag value resolved under `root`: `--x=/etc/kubernetes/pki/ca.crt` becomes
/// `--x=<root>/etc/kubernetes/pki/ca.crt`. Values that are not absolute paths (URLs, lists,
/// numbers) are left alone.
pub fn rooted_arg(arg: &str, root: &Path) -> String {
    match arg.split_once('=') {
        Some((flag, value)) if flag.starts_with('-') && value.starts_with('/') => {
            format!(
                "{flag}={}",
                root.join(value.trim_start_matches('/')).display()
            )
        }
        _ => arg.to_string(),
    }
}

/// A container's command line and environment variables.
pub type CommandAndEnv = (Vec<String>, Vec<(String, String)>);

/// The first container's command and environment of a static Pod manifest.
pub fn manifest_command(path: &Path) -> Result<CommandAndEnv, RealBinsError> {
    let bad = |detail: String| RealBinsError::Manifest {
        path: path.to_path_buf(),
        detail,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let pod: Value = serde_saphyr::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let container = pod
        .pointer("/spec/containers/0")
        .ok_or_else(|| bad("no container".into()))?;
    let command: Vec<String> = container
        .get("command")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if command.is_empty() {
        return Err(bad("the container has no command".into()));
    }
    let env = container
        .get("env")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    Some((
                        e.get("name")?.as_str()?.to_string(),
                        e.get("value")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((command, env))
}

/// A systemd unit's command line and environment as systemd would start it, read without
/// kubeadm's code: the `ExecStart=` line of `<root>/etc/systemd/system/<component>.service`,
/// its `EnvironmentFile=`s read under `root` (`KEY="value"` lines, `#` comments), `$VAR`
/// expanded into whitespace-separated words and `${VAR}` into one word, as systemd does. The
/// program is returned as written (a host path: resolve it under the root to run it).
pub fn unit_command(root: &Path, component: &str) -> Result<CommandAndEnv, RealBinsError> {
    let path = root
        .join("etc/systemd/system")
        .join(format!("{component}.service"));
    let bad = |detail: String| RealBinsError::Manifest {
        path: path.clone(),
        detail,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
    let mut env: Vec<(String, String)> = Vec::new();
    let mut exec = None;
    for line in text.lines() {
        if let Some(file) = line.strip_prefix("EnvironmentFile=") {
            let (optional, file) = match file.strip_prefix('-') {
                Some(f) => (true, f),
                None => (false, file),
            };
            let on_root = root.join(file.trim_start_matches('/'));
            let body = match std::fs::read_to_string(&on_root) {
                Ok(b) => b,
                Err(_) if optional => continue,
                Err(e) => return Err(bad(format!("EnvironmentFile {file}: {e}"))),
            };
            for l in body.lines().map(str::trim) {
                if l.is_empty() || l.starts_with('#') {
                    continue;
                }
                let Some((k, v)) = l.split_once('=') else {
                    return Err(bad(format!("EnvironmentFile {file}: not KEY=value: {l:?}")));
                };
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v);
                env.retain(|(name, _)| name != k);
                env.push((k.trim().to_string(), v.to_string()));
            }
        } else if let Some(cmd) = line.strip_prefix("ExecStart=") {
            exec = Some(cmd.to_string());
        }
    }
    let exec = exec.ok_or_else(|| bad("no ExecStart= line".into()))?;
    let lookup = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let mut command = Vec::new();
    for word in exec.split_whitespace() {
        if let Some(name) = word.strip_prefix("${").and_then(|w| w.strip_suffix('}')) {
            command.push(lookup(name));
        } else if let Some(name) = word.strip_prefix('$') {
            command.extend(lookup(name).split_whitespace().map(str::to_string));
        } else {
            command.push(word.to_string());
        }
    }
    Ok((command, env))
}

/// The unit and environment files of the four components (controlPlaneMode: systemd) that
/// exist under `root`: what a reset must leave none of.
pub fn service_files(root: &Path) -> Vec<PathBuf> {
    BINARIES
        .iter()
        .flat_map(|c| {
            [
                root.join(format!("etc/systemd/system/{c}.service")),
                root.join(format!("etc/kubernetes/{c}.env")),
            ]
        })
        .filter(|p| p.exists())
        .collect()
}

/// The four control-plane processes; killed when dropped.
#[derive(Debug)]
pub struct RealControlPlane {
    children: Vec<(String, Child, PathBuf)>,
}

impl RealControlPlane {
    /// Starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler from
    /// `<root>/etc/kubernetes/manifests/<name>.yaml`, each with its output in
    /// `<log_dir>/<name>.log`. etcd's data directory is created 0700 under the root first.
    pub fn start(bins: &RealBins, root: &Path, log_dir: &Path) -> Result<Self, RealBinsError> {
        Self::start_each(root, log_dir, &BINARIES, |name| {
            let manifest = root
                .join("etc/kubernetes/manifests")
                .join(format!("{name}.yaml"));
            let (command, env) = manifest_command(&manifest)?;
            Ok((bins.dir.join(&command[0]), command, env))
        })
    }

    /// Starts `components` from the systemd units and environment files kubeadm wrote under
    /// `root` (controlPlaneMode: systemd), as systemd would ([`unit_command`]), each binary
    /// resolved under the root, output in `<log_dir>/<name>.log`.
    pub fn start_units(
        root: &Path,
        log_dir: &Path,
        components: &[&str],
    ) -> Result<Self, RealBinsError> {
        Self::start_each(root, log_dir, components, |name| {
            let (command, env) = unit_command(root, name)?;
            Ok((root.join(command[0].trim_start_matches('/')), command, env))
        })
    }

    /// Starts each of `names` from `source(name)`: the binary, the command line (its first
    /// word the program as written) and the environment.
    fn start_each(
        root: &Path,
        log_dir: &Path,
        names: &[&str],
        source: impl Fn(&str) -> Result<(PathBuf, Vec<String>, Vec<(String, String)>), RealBinsError>,
    ) -> Result<Self, RealBinsError> {
        let mut cp = RealControlPlane {
            children: Vec::new(),
        };
        for &name in names {
            let (binary, command, env) = source(name)?;
            let args: Vec<String> = command[1..].iter().map(|a| rooted_arg(a, root)).collect();
            if name == "etcd" {
                for a in &args {
                    if let Some(dir) = a.strip_prefix("--data-dir=") {
                        let _ = std::fs::create_dir_all(dir);
                        use std::os::unix::fs::PermissionsExt;
                        let _ =
                            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
                    }
                }
            }
            let log = log_dir.join(format!("{name}.log"));
            let out = File::create(&log).map_err(|source| RealBinsError::Spawn {
                binary: log.clone(),
                source,
            })?;
            let err = out.try_clone().map_err(|source| RealBinsError::Spawn {
                binary: log.clone(),
                source,
            })?;
            let child = Command::new(&binary)
                .args(&args)
                .envs(env)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(|source| RealBinsError::Spawn { binary, source })?;
            cp.children.push((name.to_string(), child, log));
        }
        Ok(cp)
    }

    /// Fails when a process has exited (naming it and its log).
    pub fn check_running(&mut self) -> Result<(), RealBinsError> {
        for (name, child, log) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(RealBinsError::Exited {
                    component: name.clone(),
                    status: status.to_string(),
                    log: log.clone(),
                });
            }
        }
        Ok(())
    }

    /// Waits up to `timeout` for `ready()` to hold, failing early when a process exits.
    pub fn wait_until(
        &mut self,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<bool, RealBinsError> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.check_running()?;
            if ready() {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Ok(false)
    }

    /// The tail of a component's log (for failure messages).
    pub fn log_tail(&self, component: &str) -> String {
        self.children
            .iter()
            .find(|(n, _, _)| n == component)
            .and_then(|(_, _, log)| std::fs::read_to_string(log).ok())
            .map(|t| {
                let lines: Vec<&str> = t.lines().collect();
                lines[lines.len().saturating_sub(30)..].join("\n")
            })
            .unwrap_or_default()
    }
}

impl Drop for RealControlPlane {
    fn drop(&mut self) {
        // Stop in reverse order; etcd last.
        for (_, child, _) in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_are_resolved_under_the_root() {
        let root = Path::new("/tmp/r");
        assert_eq!(
            rooted_arg("--client-ca-file=/etc/kubernetes/pki/ca.crt", root),
            "--client-ca-file=/tmp/r/etc/kubernetes/pki/ca.crt"
        );
        assert_eq!(
            rooted_arg("--etcd-servers=https://127.0.0.1:2379", root),
            "--etcd-servers=https://127.0.0.1:2379"
        );
        assert_eq!(rooted_arg("--secure-port=6443", root), "--secure-port=6443");
    }

    #[test]
    fn commands_come_from_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kube-scheduler.yaml");
        std::fs::write(
            &p,
            "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: kube-scheduler\n    command:\n    - kube-scheduler\n    - --kubeconfig=/etc/kubernetes/scheduler.conf\n    env:\n    - name: A\n      value: b\n",
        )
        .unwrap();
        let (cmd, env) = manifest_command(&p).unwrap();
        assert_eq!(
            cmd,
            [
                "kube-scheduler",
                "--kubeconfig=/etc/kubernetes/scheduler.conf"
            ]
        );
        assert_eq!(env, [("A".to_string(), "b".to_string())]);
    }

    #[test]
    fn missing_binaries_are_named() {
        // Not touching the process environment: check a folder directly.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("etcd"), "").unwrap();
        let missing: Vec<&str> = BINARIES
            .iter()
            .copied()
            .filter(|b| !is_executable(&dir.path().join(b)))
            .collect();
        assert_eq!(missing, BINARIES);
    }
}
