//! File checks: a file must not exist yet, a directory must be empty, a kernel setting must be
//! `1`, a file or a program must exist.

use std::path::Path;

use super::path_label;
use crate::{Check, Context, Findings, Problem};

/// Upstream `FileAvailableCheck`: the file must not exist yet.
#[derive(Debug, Clone)]
pub struct FileAvailable {
    /// Host path.
    pub path: String,
}

impl FileAvailable {
    /// A check for `path`.
    pub fn new(path: impl Into<String>) -> Self {
        FileAvailable { path: path.into() }
    }
}

impl Check for FileAvailable {
    fn name(&self) -> String {
        format!("FileAvailable-{}", path_label(&self.path))
    }

    fn run(&self, ctx: &Context<'_>) -> Findings {
        if ctx.fx.exists(Path::new(&self.path)) {
            let fix = "a previous installation left it behind: run `kubeadm reset` to clean up, or remove the file";
            return (
                vec![],
                vec![Problem::new(format!("{} already exists", self.path), fix)],
            );
        }
        (vec![], vec![])
    }
}

/// Upstream `DirAvailableCheck`: the directory must be absent or empty.
#[derive(Debug, Clone)]
pub struct DirAvailable {
    /// Host path.
    pub path: String,
}

impl DirAvailable {
    /// A check for `path`.
    pub fn new(path: impl Into<String>) -> Self {
        DirAvailable { path: path.into() }
    }
}

impl Check for DirAvailable {
    fn name(&self) -> String {
        format!("DirAvailable-{}", path_label(&self.path))
    }

    fn run(&self, ctx: &Context<'_>) -> Findings {
        let path = Path::new(&self.path);
        if !ctx.fx.exists(path) {
            return (vec![], vec![]);
        }
        match ctx.fx.list_dir(path) {
            Ok(entries) if entries.is_empty() => (vec![], vec![]),
            Ok(_) => {
                let fix = "empty it (`kubeadm reset` clears a previous cluster's data), or point the configuration at an empty directory";
                (
                    vec![],
                    vec![Problem::new(format!("{} is not empty", self.path), fix)],
                )
            }
            Err(e) => (
                vec![],
                vec![Problem::bare(format!(
                    "unable to check if {} is empty: {e}",
                    self.path
                ))],
            ),
        }
    }
}

/// Upstream `FileContentCheck`: a file (a `/proc/sys` kernel setting) must start with `content`.
#[derive(Debug, Clone)]
pub struct FileContent {
    /// Host path.
    pub path: String,
    /// The expected leading bytes.
    pub content: String,
}

impl FileContent {
    /// A `/proc/sys` setting that must be `1`.
    pub fn one(path: impl Into<String>) -> Self {
        FileContent {
            path: path.into(),
            content: "1".into(),
        }
    }

    /// The sysctl key of a `/proc/sys` path (`/proc/sys/net/ipv4/ip_forward` → `net.ipv4.ip_forward`).
    pub fn sysctl_key(&self) -> Option<String> {
        self.path
            .strip_prefix("/proc/sys/")
            .map(|k| k.replace('/', "."))
    }

    fn fix(&self) -> String {
        match self.sysctl_key() {
            Some(key) => {
                let module = if key.starts_with("net.bridge.") {
                    "load the br_netfilter module (`modprobe br_netfilter`), then "
                } else {
                    ""
                };
                format!(
                    "{module}set {key}={c} (`sysctl -w {key}={c}`) and persist it in /etc/sysctl.d/; `kubeadm host prepare` does both",
                    c = self.content
                )
            }
            None => format!("make {} contain {}", self.path, self.content),
        }
    }
}

impl Check for FileContent {
    fn name(&self) -> String {
        format!("FileContent-{}", path_label(&self.path))
    }

    fn run(&self, ctx: &Context<'_>) -> Findings {
        match ctx.fx.read(Path::new(&self.path)) {
            Ok(None) => (
                vec![],
                vec![Problem::new(
                    format!("{} does not exist", self.path),
                    self.fix(),
                )],
            ),
            Err(_) => (
                vec![],
                vec![Problem::new(
                    format!("{} could not be read", self.path),
                    self.fix(),
                )],
            ),
            Ok(Some(bytes)) => {
                let want = self.content.as_bytes();
                if bytes.len() >= want.len() && &bytes[..want.len()] == want {
                    (vec![], vec![])
                } else {
                    let found = format!("{} contents are not set to {}", self.path, self.content);
                    (vec![], vec![Problem::new(found, self.fix())])
                }
            }
        }
    }
}

/// Upstream `FileExistingCheck`: the file must exist.
#[derive(Debug, Clone)]
pub struct FileExisting {
    /// Host path.
    pub path: String,
    /// A fixed name instead of the path-derived one.
    pub label: Option<String>,
}

impl FileExisting {
    /// A check named `label` (e.g. `ExternalEtcdClientCertificates`).
    pub fn labelled(path: impl Into<String>, label: &str) -> Self {
        FileExisting {
            path: path.into(),
            label: Some(label.into()),
        }
    }
}

impl Check for FileExisting {
    fn name(&self) -> String {
        self.label
            .clone()
            .unwrap_or_else(|| format!("FileExisting-{}", path_label(&self.path)))
    }

    fn run(&self, ctx: &Context<'_>) -> Findings {
        if ctx.fx.exists(Path::new(&self.path)) {
            return (vec![], vec![]);
        }
        let fix = match self.label.as_deref() {
            Some("ExternalEtcdClientCertificates") => {
                "copy the external etcd's CA and client certificate/key there, or fix etcd.external.caFile/certFile/keyFile".to_string()
            }
            _ => format!("create {}", self.path),
        };
        (
            vec![],
            vec![Problem::new(format!("{} doesn't exist", self.path), fix)],
        )
    }
}

/// Upstream `InPathCheck` (named `FileExisting-<program>`): a program must be in `PATH`
/// (searched under the root). Mandatory ones are errors, the others warnings.
#[derive(Debug, Clone)]
pub struct InPath {
    /// Program name.
    pub executable: String,
    /// Missing is an error (else a warning).
    pub mandatory: bool,
}

impl InPath {
    /// A program whose absence is an error.
    pub fn mandatory(executable: &str) -> Self {
        InPath {
            executable: executable.into(),
            mandatory: true,
        }
    }

    /// A program whose absence is a warning.
    pub fn optional(executable: &str) -> Self {
        InPath {
            executable: executable.into(),
            mandatory: false,
        }
    }

    fn package(&self) -> &'static str {
        match self.executable.as_str() {
            "ip" | "tc" => "iproute2 (iproute on RPM systems)",
            "mount" => "mount (util-linux)",
            "nsenter" => "util-linux",
            "touch" => "coreutils",
            "crictl" => "cri-tools",
            "conntrack" => "conntrack (conntrack-tools on RPM systems)",
            "iptables" => "iptables",
            "ebtables" => "ebtables",
            "ethtool" => "ethtool",
            "socat" => "socat",
            _ => "the package that provides it",
        }
    }
}

impl Check for InPath {
    fn name(&self) -> String {
        format!("FileExisting-{}", path_label(&self.executable))
    }

    fn run(&self, ctx: &Context<'_>) -> Findings {
        if ctx.look_path(&self.executable).is_some() {
            return (vec![], vec![]);
        }
        let p = Problem::new(
            format!("{} not found in system path", self.executable),
            format!("install {} and make sure it is in PATH", self.package()),
        );
        if self.mandatory {
            (vec![], vec![p])
        } else {
            (vec![p], vec![])
        }
    }
}

/// kubeadm-rs's `ServiceBinary-<component>` (controlPlaneMode: systemd): the binary a
/// component's unit runs exists under the root, is executable, and reports the version the
/// cluster runs (`kube-apiserver --version` prints `Kubernetes v1.31.2`, `etcd --version`
/// prints `etcd Version: 3.5.15`).
#[derive(Debug, Clone)]
pub struct ServiceBinary {
    /// The component (`kube-apiserver`).
    pub component: String,
    /// The host path of its binary.
    pub path: String,
    /// The version it must report (`v1.31.2`, `v3.5.15`).
    pub version: String,
}

impl Check for ServiceBinary {
    fn name(&self) -> String {
        format!("ServiceBinary-{}", self.component)
    }

    fn run(&self, ctx: &Context<'_>) -> Findings {
        let fix = format!(
            "install the {} binary of {} at {}, or point ControlPlaneConfiguration.binaryDir at it",
            self.component, self.version, self.path
        );
        let resolved = match kubeadm_effects::resolve(ctx.fx.root(), Path::new(&self.path)) {
            Ok(p) if p.is_file() => p,
            _ => {
                return (
                    vec![],
                    vec![Problem::new(format!("{} doesn't exist", self.path), fix)],
                );
            }
        };
        let shown = resolved.display().to_string();
        let out = match ctx
            .fx
            .run(kubeadm_effects::CommandKind::Query, &shown, &["--version"])
        {
            Ok(o) if o.success() => o,
            Ok(o) => {
                return (
                    vec![],
                    vec![Problem::new(
                        format!("{} --version failed: {}", self.path, o.stderr.trim()),
                        fix,
                    )],
                );
            }
            Err(e) => return (vec![], vec![Problem::new(format!("{e}"), fix)]),
        };
        let want = self.version.trim_start_matches('v');
        let reported = out
            .stdout
            .split_whitespace()
            .map(|w| w.trim_start_matches('v'))
            .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()) && w.contains('.'));
        match reported {
            Some(v) if v == want => (vec![], vec![]),
            Some(v) => (
                vec![],
                vec![Problem::new(
                    format!(
                        "{} reports version v{v}, but this control plane runs {}",
                        self.path, self.version
                    ),
                    fix,
                )],
            ),
            None => (
                vec![],
                vec![Problem::new(
                    format!(
                        "{} --version printed no version: {:?}",
                        self.path,
                        out.stdout.trim()
                    ),
                    fix,
                )],
            ),
        }
    }
}
