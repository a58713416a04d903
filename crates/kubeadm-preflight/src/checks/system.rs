//! Host checks: user, CPUs, memory, swap, kernel and cgroups, hostname.

use std::net::ToSocketAddrs;
use std::path::Path;

use super::read_text;
use crate::{Check, Context, Findings, Problem};

/// Upstream `IsPrivilegedUserCheck`: kubeadm must run as root.
#[derive(Debug, Clone, Copy)]
pub struct IsPrivilegedUser;

impl Check for IsPrivilegedUser {
    fn name(&self) -> String {
        "IsPrivilegedUser".into()
    }

    fn run(&self, ctx: &Context<'_>) -> Findings {
        if ctx.uid != 0 {
            let p = Problem::new(
                format!("user is not running as root (uid {})", ctx.uid),
                "run kubeadm as root (e.g. with sudo), or add --dry-run to see what it would do",
            );
            return (vec![], vec![p]);
        }
        (vec![], vec![])
    }
}

const PROC_FIX: &str = "mount procfs on /proc (under --rootfs: provide the host's /proc there)";

/// Upstream `NumCPUCheck`: at least `min` CPUs (counted in `/proc/cpuinfo`).
#[derive(Debug, Clone, Copy)]
pub struct NumCpu {
    /// Minimum number of CPUs.
    pub min: usize,
}

impl Check for NumCpu {
    fn name(&self) -> String {
        "NumCPU".into()
    }

    fn run(&self, ctx: &Context<'_>) -> Findings {
        let text = match read_text(ctx, "/proc/cpuinfo") {
            Ok(Some(t)) => t,
            Ok(None) => {
                return (
                    vec![],
                    vec![Problem::new(
                        "cannot count the CPUs: /proc/cpuinfo does not exist",
                        PROC_FIX,
                    )],
                );
            }
            Err(e) => {
                return (
                    vec![],
                    vec![Problem::new(
                        format!("cannot count the CPUs: {e}"),
                        PROC_FIX,
                    )],
                );
            }
        };
        let n = text
            .lines()
            .filter(|l| l.split(':').next().is_some_and(|k| k.trim() == "processor"))
            .count();
        if n < self.min {
            let p = Problem::new(
                format!(
                    "the number of available CPUs {n} is less than the required {}",
                    self.min
                ),
                format!("give the machine at least {} CPUs", self.min),
            );
            return (vec![], vec![p]);
        }
        (vec![], vec![])
    }
}

/// Upstream `MemCheck`: at least `min_mb` MB of RAM (`MemTotal` in `/proc/meminfo`).
#[derive(Debug, Clone, Copy)]
pub struct Mem {
    /// Minimum memory in MB.
    pub min_mb: u64,
}

impl Check for Mem {
    fn name(&self) -> String {
        "Mem".into()
    }

    fn run(&self, ctx: &Context<'_>) -> Findings {
        let text = match read_text(ctx, "/proc/meminfo") {
            Ok(Some(t)) => t,
            Ok(None) => {
                return (
                    vec![],
                    vec![Problem::new(
                        "failed to get system info: /proc/meminfo does not exist",
                        PROC_FIX,
                    )],
                );
            }
            Err(e) => {
                return (
                    vec![],
                    vec![Problem::new(
                        format!("failed to get system info: {e}"),
                        PROC_FIX,
                    )],
                );
            }
        };
        let kb = text.lines().find_map(|l| {
            let rest = l.strip_prefix("MemTotal:")?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        });
        let Some(kb) = kb else {
            return (
                vec![],
                vec![Problem::new(
                    "failed to get system info: no MemTotal in /proc/meminfo",
                    PROC_FIX,
                )],
            );
        };
        let mb = kb / 1024;
        if mb < self.min_mb {
            let p = Problem::new(
                format!(
                    "the system RAM ({mb} MB) is less than the minimum {} MB",
                    self.min_mb
                ),
                format!("give the machine at least {} MB of memory", self.min_mb),
            );
            return (vec![], vec![p]);
        }
        (vec![], vec![])
    }
}

/// Upstream `SwapCheck`: warns when swap is on (more than the header line in `/proc/swaps`).
#[derive(Debug, Clone, Copy)]
pub struct Swap;

impl Check for Swap {
    fn name(&self) -> String {
        "Swap".into()
    }

    fn run(&self, ctx: &Context<'_>) -> Findings {
        let Ok(Some(text)) = read_text(ctx, "/proc/swaps") else {
            return (vec![], vec![]);
        };
        let devices: Vec<&str> = text
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        if devices.is_empty() {
            return (vec![], vec![]);
        }
        let p = Problem::new(
            format!(
                "swap is on ({}): swap is supported for cgroup v2 only, and the kubelet must be configured for it (https://kubernetes.io/docs/concepts/architecture/nodes/#swap-memory)",
                devices.join(", ")
            ),
            "turn swap off (`swapoff -a`) and comment out the swap lines of /etc/fstab, e.g. with `kubeadm host prepare`",
        );
        (vec![p], vec![])
    }
}

/// Parses `major.minor` from a kernel release such as `6.1.0-18-amd64`.
pub(crate) fn kernel_major_minor(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor_text: String = parts
        .next()?
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    Some((major, minor_text.parse().ok()?))
}

/// Upstream `SystemVerificationCheck`: a supported kernel, and cgroups (v2, or v1) with the
/// controllers the kubelet needs.
#[derive(Debug, Clone, Copy)]
pub struct SystemVerification;

/// cgroup v2 controllers the kubelet needs (in `/sys/fs/cgroup/cgroup.controllers`).
pub const CGROUP_V2_REQUIRED: &[&str] = &["cpu", "cpuset", "memory", "pids"];
/// cgroup v1 subsystems the kubelet needs (enabled in `/proc/cgroups`).
pub const CGROUP_V1_REQUIRED: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids",
];

impl Check for SystemVerification {
    fn name(&self) -> String {
        "SystemVerification".into()
    }

    fn run(&self, ctx: &Context<'_>) -> Findings {
        let (mut warnings, mut errors) = (vec![], vec![]);
        match read_text(ctx, "/proc/sys/kernel/osrelease") {
            Ok(Some(release)) => match kernel_major_minor(&release) {
                Some(v) if v < (3, 10) => errors.push(Problem::new(
                    format!("kernel release {} is unsupported: at least 3.10 is required", release.trim()),
                    "upgrade the kernel (4.19 or newer recommended)",
                )),
                Some(v) if v < (4, 19) => warnings.push(Problem::new(
                    format!("kernel release {} is older than 4.19, the oldest LTS kernel Kubernetes is tested on", release.trim()),
                    "upgrade the kernel to 4.19 or newer",
                )),
                Some(_) => {}
                None => errors.push(Problem::bare(format!("cannot parse the kernel release {:?}", release.trim()))),
            },
            _ => errors.push(Problem::new("cannot read the kernel release from /proc/sys/kernel/osrelease", PROC_FIX)),
        }
        if let Ok(Some(controllers)) = read_text(ctx, "/sys/fs/cgroup/cgroup.controllers") {
            let have: Vec<&str> = controllers.split_whitespace().collect();
            let missing: Vec<&str> = CGROUP_V2_REQUIRED
                .iter()
                .copied()
                .filter(|c| !have.contains(c))
                .collect();
            if !missing.is_empty() {
                errors.push(Problem::new(
                    format!("cgroups v2: required controllers are not available: {}", missing.join(", ")),
                    "enable them in the root cgroup (cgroup.subtree_control; check the kernel command line and the init system's delegation)",
                ));
            }
            if !have.contains(&"hugetlb") {
                warnings.push(Problem::bare(
                    "cgroups v2: the optional controller hugetlb is not available",
                ));
            }
        } else if let Ok(Some(table)) = read_text(ctx, "/proc/cgroups") {
            let enabled: Vec<&str> = table
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    (f.len() >= 4 && f[3] == "1").then_some(f[0])
                })
                .collect();
            let missing: Vec<&str> = CGROUP_V1_REQUIRED
                .iter()
                .copied()
                .filter(|c| !enabled.contains(c))
                .collect();
            if !missing.is_empty() {
                errors.push(Problem::new(
                    format!("cgroups v1: required subsystems are not enabled: {}", missing.join(", ")),
                    "enable them on the kernel command line (e.g. cgroup_enable=memory), or boot with cgroups v2",
                ));
            }
            warnings.push(Problem::new(
                "cgroups v1 support is in maintenance mode",
                "migrate to cgroups v2 (systemd.unified_cgroup_hierarchy=1)",
            ));
        } else {
            errors.push(Problem::new(
                "cannot detect cgroups: neither /sys/fs/cgroup/cgroup.controllers (v2) nor /proc/cgroups (v1) exists",
                "mount the cgroup filesystem (cgroups v2 recommended)",
            ));
        }
        (warnings, errors)
    }
}

/// Upstream `HostnameCheck`: the node name is a valid name and resolves (through `/etc/hosts`
/// under the root, then — on the real root only — the system resolver).
#[derive(Debug, Clone)]
pub struct Hostname {
    /// The node name.
    pub node_name: String,
}

fn qualified_name_problems(name: &str) -> Vec<String> {
    let (prefix, local) = match name.rsplit_once('/') {
        Some((p, l)) => (Some(p), l),
        None => (None, name),
    };
    let mut out = Vec::new();
    if let Some(p) = prefix
        && kubeadm_api::validate::dns1123_subdomain(p).is_err()
    {
        out.push("prefix part must be a lowercase RFC 1123 subdomain".to_string());
    }
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let ends_ok = local
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && local
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if local.is_empty() {
        out.push("name part must be non-empty".into());
    } else if local.len() > 63 {
        out.push("name part must be no more than 63 characters".into());
    } else if !ends_ok || !local.chars().all(ok_char) {
        out.push("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character".into());
    }
    out
}

impl Check for Hostname {
    fn name(&self) -> String {
        "Hostname".into()
    }

    fn run(&self, ctx: &Context<'_>) -> Findings {
        let mut warnings: Vec<Problem> = qualified_name_problems(&self.node_name)
            .into_iter()
            .map(|m| {
                Problem::new(
                    format!("invalid node name format {:?}: {m}", self.node_name),
                    "pass --node-name with a valid name",
                )
            })
            .collect();
        let name = self.node_name.to_lowercase();
        let in_hosts = read_text(ctx, "/etc/hosts")
            .ok()
            .flatten()
            .is_some_and(|hosts| {
                hosts.lines().any(|l| {
                    let l = l.split('#').next().unwrap_or("");
                    l.split_whitespace()
                        .skip(1)
                        .any(|n| n.to_lowercase() == name)
                })
            });
        let resolved = in_hosts
            || (ctx.fx.root() == Path::new("/")
                && (self.node_name.as_str(), 0u16)
                    .to_socket_addrs()
                    .is_ok_and(|mut a| a.next().is_some()));
        if !resolved {
            warnings.push(Problem::new(
                format!("hostname \"{}\" could not be reached", self.node_name),
                format!("add \"{}\" to /etc/hosts or DNS", self.node_name),
            ));
        }
        (warnings, vec![])
    }
}
