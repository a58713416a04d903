//! `kubeadm reset`: undo what init or join did on this node, and nothing else.
//!
//! Only known paths are touched, always under the effects root; directories are emptied without
//! following symbolic links (the effects layer guarantees it); a file that cannot be removed is
//! reported, not fatal. Commands that act on the whole host (stopping the kubelet, flushing
//! iptables) run only when the host's systemd is visible under the root, or the root is `/`.

use std::path::{Path, PathBuf};

use kubeadm_api::v1beta4::ResetConfiguration;
use kubeadm_effects::{CommandKind, Effects};
use kubeadm_workflow::{Phase, Workflow};

use crate::error::{Error, Result};

/// kubeconfig files reset deletes from /etc/kubernetes.
pub const KUBECONFIG_FILES: &[&str] = &[
    "admin.conf",
    "super-admin.conf",
    "kubelet.conf",
    "bootstrap-kubelet.conf",
    "controller-manager.conf",
    "scheduler.conf",
];

/// Command-line choices of `kubeadm reset`.
#[derive(Debug, Clone, Default)]
pub struct ResetOptions {
    /// `--force`: do not ask.
    pub force: bool,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--cleanup-cni` (beyond upstream): also empty /etc/cni/net.d.
    pub cleanup_cni: bool,
    /// `--cleanup-iptables` (beyond upstream): also flush iptables and IPVS rules.
    pub cleanup_iptables: bool,
}

/// What reset phases see.
pub struct ResetContext {
    /// The resolved ResetConfiguration.
    pub cfg: ResetConfiguration,
    /// Every side effect goes through here.
    pub fx: Box<dyn Effects>,
    /// Command-line choices.
    pub opts: ResetOptions,
    /// How to ask the operator for confirmation (injected so tests can answer).
    pub confirm: fn() -> bool,
    /// What was left alone, for the closing message.
    pub not_cleaned: Vec<String>,
}

/// The `kubeadm reset` phase tree.
pub fn reset_workflow() -> Workflow<ResetContext, Error> {
    Workflow {
        command: "reset",
        phases: vec![
            Phase::leaf("preflight", "Run reset pre-flight checks", preflight),
            Phase::leaf(
                "remove-etcd-member",
                "Remove a local etcd member.",
                remove_etcd_member,
            ),
            Phase::leaf("cleanup-node", "Run cleanup node.", cleanup_node),
        ],
    }
}

/// Asks on standard input; anything but y/yes (including end of input) is a no.
pub fn ask_stdin() -> bool {
    use std::io::Write;
    print!("[reset] Are you sure you want to proceed? [y/N]: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    match std::io::stdin().read_line(&mut line) {
        Ok(_) => matches!(line.trim().to_lowercase().as_str(), "y" | "yes"),
        Err(_) => false,
    }
}

fn preflight(ctx: &mut ResetContext) -> Result<()> {
    println!(
        "[reset] WARNING: Changes made to this host by 'kubeadm init' or 'kubeadm join' will be reverted."
    );
    if ctx.opts.force || ctx.opts.dry_run {
        return Ok(());
    }
    if !(ctx.confirm)() {
        return Err(Error::with_hint(
            "aborted reset operation",
            "answer 'y' to the prompt, or pass --force to reset without asking",
        ));
    }
    Ok(())
}

/// The flag values of a container command line (`--name=value`).
fn flag<'a>(command: &'a [serde_json::Value], name: &str) -> Option<&'a str> {
    let prefix = format!("--{name}=");
    command
        .iter()
        .filter_map(|a| a.as_str())
        .find_map(|a| a.strip_prefix(prefix.as_str()))
}

/// Removes this node's member from the local etcd cluster (found from the etcd manifest), using
/// the healthcheck-client certificate as upstream does. Not fatal: an unreachable etcd is
/// reported with what to run by hand.
fn remove_etcd_member(ctx: &mut ResetContext) -> Result<()> {
    let fx = ctx.fx.as_ref();
    let manifest = Path::new("/etc/kubernetes/manifests/etcd.yaml");
    let Some(text) = fx.read_to_string(manifest)? else {
        println!("[reset] No etcd config found. Assuming external etcd");
        println!("[reset] Please, manually reset etcd to prevent further issues");
        return Ok(());
    };
    let pod: serde_json::Value = serde_saphyr::from_str(&text).map_err(|e| {
        Error::with_hint(
            format!("cannot parse {}: {e}", manifest.display()),
            "fix or remove the etcd manifest",
        )
    })?;
    let command = pod["spec"]["containers"][0]["command"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let (Some(peer), Some(client)) = (
        flag(&command, "initial-advertise-peer-urls"),
        flag(&command, "advertise-client-urls"),
    ) else {
        println!(
            "[reset] WARNING: the etcd manifest names no peer or client URL; remove this etcd member by hand with etcdctl"
        );
        return Ok(());
    };
    let client = client.split(',').next().unwrap_or(client).to_string();
    if ctx.opts.dry_run {
        fx.note(&format!(
            "Would remove the etcd member with peer URL {peer} (via {client})"
        ));
        return Ok(());
    }
    let dir = Path::new(if ctx.cfg.certificates_dir.is_empty() {
        kubeadm_api::defaults::DEFAULT_CERTIFICATES_DIR
    } else {
        &ctx.cfg.certificates_dir
    });
    let read = |name: &str| -> Result<Vec<u8>> {
        let p = dir.join(name);
        fx.read(&p)?.ok_or_else(|| {
            Error::with_hint(
                format!("{} is missing", p.display()),
                "remove this etcd member by hand with etcdctl",
            )
        })
    };
    let outcome = (|| -> Result<String> {
        let tls = kubeadm_etcd::TlsFiles {
            ca: read("etcd/ca.crt")?,
            cert: read("etcd/healthcheck-client.crt")?,
            key: read("etcd/healthcheck-client.key")?,
        };
        let timeout = ctx
            .cfg
            .timeouts
            .as_ref()
            .and_then(|t| t.etcd_api_call)
            .map(|d| d.to_std())
            .unwrap_or(std::time::Duration::from_secs(120));
        let etcd = kubeadm_etcd::EtcdClient::new(
            std::slice::from_ref(&client),
            Some(&tls),
            std::time::Duration::from_secs(10),
        )
        .map_err(|e| Error::msg(e.to_string()))?;
        let members = etcd.member_list().map_err(|e| Error::msg(e.to_string()))?;
        let Some(me) = members
            .iter()
            .find(|m| m.peer_urls.iter().any(|u| u == peer))
        else {
            return Ok(format!(
                "[reset] This node's etcd member ({peer}) is not in the cluster any more"
            ));
        };
        if members.len() == 1 {
            return Ok(
                "[reset] Not removing the etcd member: it is the only member of the cluster".into(),
            );
        }
        etcd.remove_when_ready(me.id, timeout)
            .map_err(|e| Error::msg(e.to_string()))?;
        Ok(format!(
            "[reset] Removed the etcd member {} ({peer}); {} member(s) remain",
            me.name,
            members.len() - 1
        ))
    })();
    match outcome {
        Ok(line) => println!("{line}"),
        Err(e) => println!(
            "[reset] WARNING: failed to remove the etcd member: {e}; remove it by hand with `etcdctl member remove`"
        ),
    }
    Ok(())
}

/// Host-wide commands are safe to run only on the real host (root `/`) or when the root shows a
/// running systemd of its own.
fn systemd_here(fx: &dyn Effects) -> bool {
    fx.exists(Path::new("/run/systemd/system"))
}

fn live_host(fx: &dyn Effects) -> bool {
    fx.root() == Path::new("/")
}

fn cleanup_node(ctx: &mut ResetContext) -> Result<()> {
    let fx = ctx.fx.as_ref();
    // 1. Stop the kubelet so it does not restart what we delete.
    if systemd_here(fx) {
        println!("[reset] Stopping the kubelet service");
        let out = fx.run(CommandKind::Mutate, "systemctl", &["stop", "kubelet"])?;
        if !out.success() {
            println!(
                "[reset] WARNING: could not stop the kubelet: {}",
                out.stderr.trim()
            );
        }
    } else {
        println!("[reset] No systemd found: not stopping the kubelet service");
    }

    // 2. Unmount everything below the kubelet's directory (pod volumes), deepest first.
    let kubelet_dir = Path::new("/var/lib/kubelet");
    let mounts = mounts_below(fx.root(), kubelet_dir);
    if !mounts.is_empty() {
        println!(
            "[reset] Unmounting mounted directories in {:?}",
            kubelet_dir.display().to_string()
        );
        for m in mounts.iter().rev() {
            let target = m.display().to_string();
            let out = fx.run(CommandKind::Mutate, "umount", &[target.as_str()])?;
            if !out.success() {
                println!(
                    "[reset] WARNING: failed to unmount {target}: {}",
                    out.stderr.trim()
                );
            }
        }
    }

    // 3. The etcd data directory of a local member, found from its manifest.
    let mut dirs: Vec<PathBuf> = Vec::new();
    match etcd_data_dir(fx)? {
        Some(d) => dirs.push(d),
        None => println!("[reset] No etcd config found. Assuming external etcd"),
    }

    // 4. Our directories (emptied, kept) and files.
    let cert_dir = if ctx.cfg.certificates_dir.is_empty() {
        kubeadm_api::defaults::DEFAULT_CERTIFICATES_DIR
    } else {
        &ctx.cfg.certificates_dir
    };
    dirs.extend(
        [
            "/var/lib/kubelet",
            "/etc/kubernetes/manifests",
            cert_dir,
            "/var/lib/cni",
            "/var/run/kubernetes",
        ]
        .iter()
        .map(PathBuf::from),
    );
    if ctx.cfg.cleanup_tmp_dir {
        dirs.push(PathBuf::from("/etc/kubernetes/tmp"));
    }
    if ctx.opts.cleanup_cni {
        dirs.push(PathBuf::from("/etc/cni/net.d"));
    } else {
        ctx.not_cleaned.push("The reset process does not clean CNI configuration. To do so, you must remove /etc/cni/net.d (or pass --cleanup-cni)".into());
    }
    let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    println!("[reset] Deleting contents of directories: {shown:?}");
    let mut problems = Vec::new();
    for d in &dirs {
        if !safe_to_empty(d) {
            problems.push(format!(
                "refusing to empty {}: not a directory kubeadm owns",
                d.display()
            ));
            continue;
        }
        problems.extend(fx.remove_dir_contents(d)?);
    }
    let files: Vec<PathBuf> = KUBECONFIG_FILES
        .iter()
        .map(|f| Path::new("/etc/kubernetes").join(f))
        .collect();
    let shown: Vec<String> = files.iter().map(|d| d.display().to_string()).collect();
    println!("[reset] Deleting files: {shown:?}");
    for f in &files {
        if let Err(e) = fx.remove_file(f) {
            problems.push(e.to_string());
        }
    }
    for p in &problems {
        println!("[reset] WARNING: {p}");
    }

    // 5. Network rules: only on request, and only on the live host.
    if ctx.opts.cleanup_iptables {
        if live_host(fx) {
            println!("[reset] Flushing iptables and IPVS rules");
            for (program, args) in [
                ("iptables", vec!["-F"]),
                ("iptables", vec!["-t", "nat", "-F"]),
                ("iptables", vec!["-t", "mangle", "-F"]),
                ("iptables", vec!["-X"]),
                ("ipvsadm", vec!["--clear"]),
            ] {
                match fx.run(CommandKind::Mutate, program, &args) {
                    Ok(out) if out.success() => {}
                    Ok(out) => println!(
                        "[reset] WARNING: {program} {}: {}",
                        args.join(" "),
                        out.stderr.trim()
                    ),
                    Err(e) => println!("[reset] WARNING: {e}"),
                }
            }
        } else {
            fx.note(
                "--cleanup-iptables skipped: the rules belong to the live host, not to --rootfs",
            );
        }
    } else {
        ctx.not_cleaned.push("The reset process does not reset or clean up iptables rules or IPVS tables. If you wish to reset iptables, you must do so manually (or pass --cleanup-iptables), e.g. \"iptables -F && iptables -t nat -F && iptables -t mangle -F && iptables -X\"; for IPVS, \"ipvsadm --clear\"".into());
    }
    ctx.not_cleaned.push("The reset process does not clean your kubeconfig files and you must remove them manually. Please, check the contents of the $HOME/.kube/config file.".into());
    Ok(())
}

/// Directories whose contents must never be deleted whatever a manifest or config says.
const PROTECTED: &[&str] = &[
    "/etc",
    "/var",
    "/var/lib",
    "/var/run",
    "/run",
    "/usr",
    "/home",
    "/root",
    "/boot",
    "/opt",
    "/srv",
    "/tmp",
    "/etc/kubernetes",
];

/// A directory reset may empty: absolute, at least two levels deep, not a system directory.
fn safe_to_empty(dir: &Path) -> bool {
    let depth = dir
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .count();
    dir.is_absolute() && depth >= 2 && !PROTECTED.iter().any(|p| Path::new(p) == dir)
}

/// Mount points at or below `dir` (a host path) according to the kernel's mount table, as host
/// paths on the real file system (the root joined in).
fn mounts_below(root: &Path, dir: &Path) -> Vec<PathBuf> {
    let Ok(base) = kubeadm_effects::resolve(root, dir) else {
        return Vec::new();
    };
    // Resolve symlinks of the kubelet directory itself, as upstream does.
    let base = std::fs::canonicalize(&base).unwrap_or(base);
    let Ok(table) = std::fs::read_to_string("/proc/self/mounts") else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = table
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        // The mount table escapes spaces as \040.
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(&base))
        .collect();
    out.sort();
    out
}

/// The local etcd's data directory from its static Pod manifest (`etcd-data` volume), if any.
fn etcd_data_dir(fx: &dyn Effects) -> Result<Option<PathBuf>> {
    let manifest = Path::new("/etc/kubernetes/manifests/etcd.yaml");
    let Some(text) = fx.read_to_string(manifest)? else {
        return Ok(None);
    };
    let pod: serde_json::Value = serde_saphyr::from_str(&text).map_err(|e| {
        Error::with_hint(
            format!("cannot parse {}: {e}", manifest.display()),
            "fix or remove the etcd manifest, then run reset again",
        )
    })?;
    let volumes = pod["spec"]["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let dir = volumes
        .iter()
        .find(|v| v["name"] == "etcd-data")
        .and_then(|v| v["hostPath"]["path"].as_str())
        .map(PathBuf::from);
    Ok(Some(dir.unwrap_or_else(|| {
        PathBuf::from(kubeadm_api::defaults::DEFAULT_ETCD_DATA_DIR)
    })))
}
