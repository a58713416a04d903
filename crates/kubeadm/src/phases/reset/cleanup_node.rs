//! `reset phase cleanup-node`: the kubelet stopped, every Pod sandbox removed through the CRI,
//! kubeadm's files and directories removed
//! (never following links out of the root), optional CNI/iptables/tmp cleanup.

use std::path::{Path, PathBuf};

use kubeadm_effects::{CommandKind, Effects};
use kubeadm_workflow::Phase;

use super::{KUBECONFIG_FILES, ResetContext};
use crate::error::{Error, Result};

/// `cleanup-node`.
pub fn phase() -> Phase<ResetContext, Error> {
    Phase::leaf("cleanup-node", "Run cleanup node.", run).flags(&[
        "config",
        "cert-dir",
        "cri-socket",
        "cleanup-tmp-dir",
        "cleanup-cni",
        "cleanup-iptables",
        "dry-run",
    ])
}

/// Host-wide commands are safe to run only on the real host (root `/`) or when the root shows a
/// running systemd of its own.
fn systemd_here(fx: &dyn Effects) -> bool {
    fx.exists(Path::new("/run/systemd/system"))
}

fn live_host(fx: &dyn Effects) -> bool {
    fx.root() == Path::new("/")
}

pub(super) fn run(ctx: &mut ResetContext) -> Result<()> {
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
    // The etcd data directory of a local member, found from its manifest or service, before
    // the services (controlPlaneMode: systemd) are stopped and their files removed.
    let etcd_dir = etcd_data_dir(fx)?;
    crate::services::remove_all(fx)?;

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

    // 3. Every Pod sandbox through the CRI (their containers go with them), before the files
    //    they use are deleted; problems are reported and reset goes on, as upstream.
    remove_pod_sandboxes(fx, &ctx.cfg.cri_socket);

    // 4. The etcd data directory of a local member (found in step 1).
    let mut dirs: Vec<PathBuf> = Vec::new();
    match etcd_dir {
        Some(d) => dirs.push(d),
        None if ctx.external_etcd_said => {}
        None => println!("[reset] No etcd config found. Assuming external etcd"),
    }

    // 5. Our directories (emptied, kept) and files.
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
    // The built-in HA endpoint's files (kubeadm-rs only), where this node has them.
    if fx.exists(Path::new(kubeadm_render::ha::HA_DIR)) {
        dirs.push(PathBuf::from(kubeadm_render::ha::HA_DIR));
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
        crate::commands::kill_point("reset", &format!("cleanup-node:{}", d.display()));
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
        crate::commands::kill_point("reset", &format!("cleanup-node:{}", f.display()));
        if let Err(e) = fx.remove_file(f) {
            problems.push(e.to_string());
        }
    }
    for p in &problems {
        println!("[reset] WARNING: {p}");
    }

    // 6. Network rules: only on request, and only on the live host.
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

/// Stops and removes every Pod sandbox of the runtime at `endpoint` (upstream
/// `removeContainers`: `ListPodSandbox`, then `StopPodSandbox` and `RemovePodSandbox` each,
/// retried); the dry run lists them and says what it would remove.
fn remove_pod_sandboxes(fx: &dyn Effects, endpoint: &str) {
    println!("[reset] Removing Kubernetes-managed containers (every Pod sandbox of {endpoint})");
    let rt = match crate::container_runtime::connect(fx, endpoint) {
        Ok(rt) => rt,
        Err(e) => {
            println!("[reset] WARNING: failed to remove containers: {e}");
            return;
        }
    };
    match kubeadm_cri::remove_all_pod_sandboxes(rt.as_ref()) {
        Ok(removed) if !fx.is_dry_run() => {
            for s in removed {
                println!("[reset] Removed Pod sandbox {} ({})", s.id, s.pod);
            }
        }
        Ok(_) => {}
        Err(errors) => {
            for e in errors {
                println!("[reset] WARNING: failed to remove containers: {e}");
            }
        }
    }
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
        let flags = crate::services::flags(fx, "etcd")?;
        return Ok(flags.map(|f| {
            let dir = f.iter().find_map(|a| a.strip_prefix("--data-dir="));
            PathBuf::from(dir.unwrap_or(kubeadm_api::defaults::DEFAULT_ETCD_DATA_DIR))
        }));
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
