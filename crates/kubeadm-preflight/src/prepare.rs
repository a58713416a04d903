//! `kubeadm host prepare` (beyond upstream): fixes what the kernel-module, sysctl and swap
//! checks find, and persists it across reboots.
//!
//! - kernel modules: `br_netfilter`, `overlay` (+ `ip_vs`, `ip_vs_rr`, `ip_vs_wrr`, `ip_vs_sh`,
//!   `nf_conntrack` for kube-proxy's ipvs mode) listed in `/etc/modules-load.d/k8s.conf` and
//!   loaded with `modprobe`;
//! - sysctls: `net.bridge.bridge-nf-call-iptables`, `net.bridge.bridge-nf-call-ip6tables` and
//!   `net.ipv4.ip_forward` set to 1 in `/etc/sysctl.d/k8s.conf` and applied with
//!   `sysctl --system`;
//! - swap: `swapoff -a`, and swap lines of `/etc/fstab` commented out (the old file kept as
//!   `/etc/fstab.kubeadm-bak`).
//!
//! Everything goes through the effects layer, so `--dry-run` prints instead of doing. On a
//! `--rootfs` other than `/` the live kernel is not touched: the files are written under the
//! root and the kernel's view (`/proc/modules`, `/proc/sys/...`, `/proc/swaps`) is updated in
//! the fixture instead, with a note. Running it again changes nothing.

use kubeadm_errors::Hint;
use std::path::Path;

use kubeadm_effects::{CommandKind, Content, EffectError, Effects};

use crate::IPVS_MODULES;

/// The modules file.
pub const MODULES_FILE: &str = "/etc/modules-load.d/k8s.conf";
/// The sysctl file.
pub const SYSCTL_FILE: &str = "/etc/sysctl.d/k8s.conf";
/// The fstab backup.
pub const FSTAB_BACKUP: &str = "/etc/fstab.kubeadm-bak";
/// Modules every node needs.
pub const BASE_MODULES: &[&str] = &["br_netfilter", "overlay"];
/// Sysctls every node needs, each set to 1.
pub const SYSCTLS: &[&str] = &[
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.ipv4.ip_forward",
];

/// What to prepare for.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrepareOptions {
    /// kube-proxy will run in ipvs mode: load the IPVS modules too.
    pub ipvs: bool,
}

/// What `host prepare` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrepareReport {
    /// One line per change, in the imperative ("load kernel modules: br_netfilter"); empty
    /// when the host was already prepared.
    pub changes: Vec<String>,
    /// Things not done, and why.
    pub notes: Vec<String>,
}

/// `host prepare` failed.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// A file could not be read or written.
    #[error(transparent)]
    Effect(#[from] EffectError),
    /// `/etc/fstab` (or where its backup goes) cannot be used; found before anything changed.
    #[error("/etc/fstab: {problem}")]
    Fstab {
        /// What is wrong, with its line when there is one.
        problem: String,
    },
    /// A host command failed.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Its error output.
        detail: String,
    },
}

impl Hint for PrepareError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            PrepareError::Effect(_) if rustix::process::geteuid().is_root() => {
                "check the path named above (a read-only or full file system, a directory where a file belongs); add --dry-run to see what would be done".into()
            }
            PrepareError::Effect(_) => {
                "run as root, or add --dry-run to see what would be done".into()
            }
            PrepareError::Fstab { .. } => {
                "fix /etc/fstab (nothing was changed), then run `kubeadm host prepare` again".into()
            }
            PrepareError::Command { .. } if rustix::process::geteuid().is_root() => {
                "check that the kernel ships the module (`modinfo <name>`) and that modules can be loaded here (not inside a container without them)".into()
            }
            PrepareError::Command { .. } => {
                "check that the kernel ships the module (`modinfo <name>`) and that you run as root"
                    .into()
            }
        })
    }
}

fn read(fx: &dyn Effects, path: &str) -> Result<Option<String>, EffectError> {
    fx.read_to_string(Path::new(path))
}

fn live(fx: &dyn Effects) -> bool {
    fx.root() == Path::new("/")
}

fn mutate(fx: &dyn Effects, program: &str, args: &[&str]) -> Result<(), PrepareError> {
    let out = fx.run(CommandKind::Mutate, program, args)?;
    if out.success() {
        Ok(())
    } else {
        Err(PrepareError::Command {
            command: std::iter::once(program)
                .chain(args.iter().copied())
                .collect::<Vec<_>>()
                .join(" "),
            detail: format!("{}{}", out.stderr.trim(), out.stdout.trim()),
        })
    }
}

/// Modules loaded (`/proc/modules`) or built into the kernel (`modules.builtin`).
fn present_modules(fx: &dyn Effects) -> Result<Vec<String>, EffectError> {
    let mut out: Vec<String> = read(fx, "/proc/modules")?
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    let release = read(fx, "/proc/sys/kernel/osrelease")?.unwrap_or_default();
    if !release.trim().is_empty() {
        let builtin = read(
            fx,
            &format!("/lib/modules/{}/modules.builtin", release.trim()),
        )?
        .unwrap_or_default();
        out.extend(builtin.lines().filter_map(|l| {
            l.rsplit('/')
                .next()
                .and_then(|f| f.strip_suffix(".ko"))
                .map(str::to_string)
        }));
    }
    Ok(out)
}

fn modules(
    fx: &dyn Effects,
    opts: &PrepareOptions,
    report: &mut PrepareReport,
) -> Result<(), PrepareError> {
    let mut wanted: Vec<&str> = BASE_MODULES.to_vec();
    if opts.ipvs {
        wanted.extend(IPVS_MODULES);
    }
    // Persist: keep what the file lists, add what is missing.
    let current = read(fx, MODULES_FILE)?;
    let text = current.clone().unwrap_or_else(|| {
        "# Kernel modules Kubernetes needs; written by `kubeadm host prepare`.\n".into()
    });
    let listed: Vec<&str> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect();
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|m| !listed.contains(m))
        .collect();
    if !missing.is_empty() {
        let mut new = text.clone();
        if !new.is_empty() && !new.ends_with('\n') {
            new.push('\n');
        }
        for m in &missing {
            new.push_str(m);
            new.push('\n');
        }
        fx.write_file(
            Path::new(MODULES_FILE),
            Content::Plain(new.into_bytes()),
            0o644,
        )?;
        report.changes.push(format!(
            "persist kernel modules in {MODULES_FILE}: {}",
            missing.join(", ")
        ));
    }
    // Load.
    let present = present_modules(fx)?;
    let to_load: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|m| !present.iter().any(|p| p == m))
        .collect();
    if to_load.is_empty() {
        return Ok(());
    }
    if live(fx) {
        for m in &to_load {
            mutate(fx, "modprobe", &[m])?;
        }
    } else {
        let mut table = read(fx, "/proc/modules")?.unwrap_or_default();
        for m in &to_load {
            table.push_str(&format!("{m} 16384 0 - Live 0x0000000000000000\n"));
        }
        fx.write_file(
            Path::new("/proc/modules"),
            Content::Plain(table.into_bytes()),
            0o444,
        )?;
        report.notes.push(format!(
            "not the live host (--rootfs {}): skipped `modprobe`; recorded the modules as loaded in its /proc/modules",
            fx.root().display()
        ));
    }
    report
        .changes
        .push(format!("load kernel modules: {}", to_load.join(", ")));
    Ok(())
}

fn sysctls(fx: &dyn Effects, report: &mut PrepareReport) -> Result<(), PrepareError> {
    let current = read(fx, SYSCTL_FILE)?;
    let text = current.clone().unwrap_or_else(|| {
        "# Kernel settings Kubernetes needs; written by `kubeadm host prepare`.\n".into()
    });
    let key_of = |l: &str| {
        l.split('=')
            .next()
            .map(|k| k.trim().to_string())
            .filter(|k| !k.starts_with('#') && !k.is_empty())
    };
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for key in SYSCTLS {
        let want = format!("{key} = 1");
        match lines
            .iter()
            .position(|l| key_of(l).as_deref() == Some(*key))
        {
            Some(i) => {
                let value = lines[i]
                    .split_once('=')
                    .map(|(_, v)| v.trim().to_string())
                    .unwrap_or_default();
                if value != "1" {
                    lines[i] = want;
                }
            }
            None => lines.push(want),
        }
    }
    let mut new = lines.join("\n");
    new.push('\n');
    if current.as_deref() != Some(new.as_str()) {
        fx.write_file(
            Path::new(SYSCTL_FILE),
            Content::Plain(new.into_bytes()),
            0o644,
        )?;
        report.changes.push(format!(
            "persist sysctls in {SYSCTL_FILE}: {}",
            SYSCTLS.join("=1, ") + "=1"
        ));
    }
    // Apply.
    let mut wrong = Vec::new();
    for key in SYSCTLS {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        if read(fx, &path)?.map(|v| v.trim().to_string()).as_deref() != Some("1") {
            wrong.push((*key, path));
        }
    }
    if wrong.is_empty() {
        return Ok(());
    }
    if live(fx) {
        mutate(fx, "sysctl", &["--system"])?;
        if !fx.is_dry_run() {
            for (key, path) in &wrong {
                let now = read(fx, path)?.map(|v| v.trim().to_string());
                if now.as_deref() != Some("1") {
                    report.notes.push(format!(
                        "{key} is still {} after `sysctl --system`: a file sorted after k8s.conf in /etc/sysctl.d (or /run, /usr/lib) may set it back",
                        now.unwrap_or_else(|| "missing".into())
                    ));
                }
            }
        }
    } else {
        for (_, path) in &wrong {
            fx.write_file(Path::new(path), Content::Plain(b"1\n".to_vec()), 0o644)?;
        }
        report.notes.push(format!(
            "not the live host (--rootfs {}): skipped `sysctl --system`; wrote the values into its /proc/sys",
            fx.root().display()
        ));
    }
    report.changes.push(format!(
        "apply sysctls: {}",
        wrong
            .iter()
            .map(|(k, _)| format!("{k}=1"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(())
}

/// Comments out the active swap lines of an fstab; `None` when there are none.
pub fn comment_out_swap(fstab: &str) -> Option<String> {
    let mut changed = false;
    let mut out = String::with_capacity(fstab.len() + 16);
    for line in fstab.split_inclusive('\n') {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let active =
            !line.trim_start().starts_with('#') && fields.len() >= 3 && fields[2] == "swap";
        if active {
            out.push('#');
            changed = true;
        }
        out.push_str(line);
    }
    changed.then_some(out)
}

/// Reads and checks `/etc/fstab` and its backup's place before anything is changed: the old
/// and the new text when swap lines are to be commented out.
fn plan_fstab(fx: &dyn Effects) -> Result<Option<(String, String)>, PrepareError> {
    let bad = |problem: String| PrepareError::Fstab { problem };
    let Some(bytes) = fx.read(Path::new("/etc/fstab"))? else {
        return Ok(None);
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        bad(format!(
            "not a text file (invalid UTF-8 at byte {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let fields = t.split_whitespace().count();
        if fields < 3 {
            return Err(bad(format!(
                "line {}: {fields} field(s), expected at least a device, a mount point and a type: {t:?}",
                i + 1
            )));
        }
    }
    let Some(new) = comment_out_swap(&text) else {
        return Ok(None);
    };
    // Listable and present: a directory, which the backup's rename would fail on.
    let backup = Path::new(FSTAB_BACKUP);
    if fx.exists(backup) && fx.list_dir(backup).is_ok() {
        return Err(bad(format!(
            "its backup {FSTAB_BACKUP} would be written, but that is a directory"
        )));
    }
    Ok(Some((text, new)))
}

fn swap(
    fx: &dyn Effects,
    fstab_plan: &Option<(String, String)>,
    report: &mut PrepareReport,
) -> Result<(), PrepareError> {
    if let Some(swaps) = read(fx, "/proc/swaps")? {
        let mut lines = swaps.lines();
        let header = lines
            .next()
            .unwrap_or("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority")
            .to_string();
        let devices: Vec<&str> = lines.filter_map(|l| l.split_whitespace().next()).collect();
        if !devices.is_empty() {
            if live(fx) {
                mutate(fx, "swapoff", &["-a"])?;
            } else {
                fx.write_file(
                    Path::new("/proc/swaps"),
                    Content::Plain(format!("{header}\n").into_bytes()),
                    0o444,
                )?;
                report.notes.push(format!(
                    "not the live host (--rootfs {}): skipped `swapoff -a`; emptied its /proc/swaps",
                    fx.root().display()
                ));
            }
            report
                .changes
                .push(format!("turn swap off: {}", devices.join(", ")));
        }
    }
    if let Some((fstab, new)) = fstab_plan.clone() {
        fx.write_file(
            Path::new(FSTAB_BACKUP),
            Content::Plain(fstab.into_bytes()),
            0o644,
        )?;
        fx.write_file(
            Path::new("/etc/fstab"),
            Content::Plain(new.into_bytes()),
            0o644,
        )?;
        report.changes.push(format!(
            "comment out the swap lines of /etc/fstab (previous file kept as {FSTAB_BACKUP})"
        ));
    }
    Ok(())
}

/// Prepares the host (see the module docs). Returns what changed.
pub fn prepare(fx: &dyn Effects, opts: &PrepareOptions) -> Result<PrepareReport, PrepareError> {
    let mut report = PrepareReport::default();
    // Everything that can be checked is checked before the first change.
    let fstab_plan = plan_fstab(fx)?;
    modules(fx, opts, &mut report)?;
    sysctls(fx, &mut report)?;
    swap(fx, &fstab_plan, &mut report)?;
    report.notes.dedup();
    Ok(report)
}

#[cfg(test)]
mod hint_tests {
    use super::*;

    /// Issue 13: "run as root" is no advice to root.
    #[test]
    fn root_is_never_told_to_run_as_root() {
        let root = rustix::process::geteuid().is_root();
        for e in [
            PrepareError::Command {
                command: "modprobe br_netfilter".into(),
                detail: "FATAL: Module br_netfilter not found".into(),
            },
            PrepareError::Effect(EffectError::BadPath("x".into())),
        ] {
            let hint = e.hint().unwrap();
            assert_eq!(hint.contains("run as root"), !root, "{hint}");
        }
    }
}
