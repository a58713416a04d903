//! `kubeadm config images pull|export|import`: the images of `config images list`, through the
//! container runtime's CRI; bundles for hosts without a registry.
//!
//! Export and import use containerd's own client, `ctr`, for the archive itself: the CRI has
//! no call that reads or writes image content, and `ctr` writes and unpacks it exactly as the
//! containerd that serves it expects (as `etcdutl` does for etcd's files). What kubeadm adds is
//! the image list, the pulls through the CRI, the checks of every blob's checksum before an
//! archive gets its name or is loaded, and the check through the CRI that every image arrived.

use std::path::{Path, PathBuf};

use kubeadm_api::config::InitConfig;
use kubeadm_api::decode::Documents;
use kubeadm_api::defaults::{self, PLACEHOLDER_ADVERTISE_ADDRESS};
use kubeadm_cri::bundle;
use kubeadm_cri::{CriClient, PullPolicy, Runtime};
use kubeadm_effects::{CommandKind, DryRunEffects, Effects};

use super::{flag_error, parse_feature_gates, read_config};
use crate::cli::{ImagesExportArgs, ImagesImportArgs, ImagesPullArgs, ImagesRuntimeArgs};
use crate::commands::init::effects;
use crate::container_runtime::{self, images_of};
use crate::error::{Error, Result};
use crate::host;

/// The containerd namespace the CRI plugin keeps its images in.
pub const CRI_NAMESPACE: &str = "k8s.io";

/// The configuration of `--config` and the flags, completed as init completes it (CRI socket
/// detection included); a missing default-route address does not matter here.
fn load(root: &Path, a: &ImagesRuntimeArgs) -> Result<InitConfig> {
    let (docs, file) = match &a.config {
        Some(p) => (read_config(p)?, p.display().to_string()),
        None => (Documents::default(), "flags".to_string()),
    };
    let cri_in_file = docs
        .init
        .as_ref()
        .is_some_and(|i| !i.node_registration.cri_socket.is_empty());
    let (mut init, mut cluster, kubelet, proxy) = InitConfig::start(docs);
    if let Some(v) = &a.kubernetes_version {
        cluster.kubernetes_version = v.clone();
    }
    if let Some(v) = &a.image_repository {
        cluster.image_repository = v.clone();
    }
    if let Some(v) = &a.feature_gates {
        cluster.feature_gates = parse_feature_gates(v)?;
    }
    if let Some(v) = &a.cri_socket {
        init.node_registration.cri_socket = v.clone();
    }
    let probe = DryRunEffects::new(root, Box::new(std::io::sink()));
    let mut facts = host::facts(&probe);
    if facts.default_ip.is_none() {
        facts.default_ip = PLACEHOLDER_ADVERTISE_ADDRESS.parse().ok();
    }
    let cri_given = cri_in_file || a.cri_socket.is_some();
    Ok(InitConfig::complete(
        init, cluster, kubelet, proxy, &facts, cri_given, &file,
    )?)
}

fn banner(dry_run: bool) {
    if dry_run {
        println!("[dryrun] Running in dry-run mode: nothing will be pulled, written or loaded");
    }
}

/// `kubeadm config images pull`.
pub fn pull(root: &Path, args: &ImagesPullArgs) -> Result<()> {
    let a = &args.common;
    let cfg = load(root, a)?;
    banner(a.dry_run);
    let fx = effects(root, a.dry_run);
    let n = &cfg.init.node_registration;
    let rt = container_runtime::connect(fx.as_ref(), &n.cri_socket)?;
    let policy = container_runtime::policy(&n.image_pull_policy)?;
    container_runtime::ensure(
        rt.as_ref(),
        &images_of(&cfg),
        policy,
        n.image_pull_serial.unwrap_or(true),
        a.dry_run,
        "config/images",
    )?;
    Ok(())
}

/// The host path of a CRI endpoint's socket, resolved under the root (for `ctr --address`).
fn socket_on_host(fx: &dyn Effects, endpoint: &str) -> Result<String> {
    let path = kubeadm_cri::socket_path(endpoint)?;
    Ok(kubeadm_effects::resolve(fx.root(), Path::new(path))?
        .display()
        .to_string())
}

/// A `ctr` command that failed, with what it printed.
fn ctr_failed(ctr: &str, what: &str, out: &kubeadm_effects::CommandOutput) -> Error {
    Error::with_hint(
        format!(
            "`{ctr} images {what}` failed (exit {}): {}",
            out.code
                .map_or("by a signal".to_string(), |c| c.to_string()),
            out.stderr.trim()
        ),
        "run the same command by hand to see why; containerd's log tells more (`journalctl -u containerd`)",
    )
}

/// The partial file next to `out` (same directory, so the last rename is atomic).
fn partial_of(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle.tar".into());
    out.with_file_name(format!(".{name}.partial"))
}

/// `kubeadm config images export --output FILE`.
pub fn export(root: &Path, args: &ImagesExportArgs) -> Result<()> {
    let a = &args.common;
    let cfg = load(root, a)?;
    banner(a.dry_run);
    let out = &args.output;
    if out.is_dir() {
        return Err(flag_error(
            "output",
            &out.display().to_string(),
            "is a directory; name the archive to write",
        ));
    }
    let fx = effects(root, a.dry_run);
    let n = &cfg.init.node_registration;
    let endpoint = n.cri_socket.clone();
    let rt = container_runtime::connect(fx.as_ref(), &endpoint)?;
    let images = images_of(&cfg);
    // Everything must be in the runtime before it can be written out.
    container_runtime::ensure(
        rt.as_ref(),
        &images,
        PullPolicy::IfNotPresent,
        n.image_pull_serial.unwrap_or(true),
        a.dry_run,
        "config/images",
    )?;
    let socket = socket_on_host(fx.as_ref(), &endpoint)?;
    let partial = partial_of(out);
    let partial_s = partial.display().to_string();
    let mut argv: Vec<&str> = vec![
        "--address",
        &socket,
        "--namespace",
        CRI_NAMESPACE,
        "images",
        "export",
        &partial_s,
    ];
    argv.extend(images.iter().map(String::as_str));
    if a.dry_run {
        println!(
            "[dryrun] Would write the {} images into {} (through {}), check every blob's checksum, then rename it to {}",
            images.len(),
            partial.display(),
            args.ctr,
            out.display()
        );
        fx.run(CommandKind::Mutate, &args.ctr, &argv)?;
        return Ok(());
    }
    let _ = std::fs::remove_file(&partial);
    let result = (|| -> Result<bundle::Contents> {
        let o = fx.run(CommandKind::Mutate, &args.ctr, &argv)?;
        if !o.success() {
            return Err(ctr_failed(&args.ctr, "export", &o));
        }
        let contents = bundle::check(&partial)?;
        if let Some(missing) = images.iter().find(|i| !contents.images.contains(i)) {
            return Err(Error::msg(format!(
                "the archive written by {} lacks {missing}",
                args.ctr
            )));
        }
        std::fs::rename(&partial, out).map_err(|source| Error::ReadInput {
            path: out.display().to_string(),
            source,
        })?;
        Ok(contents)
    })();
    match result {
        Ok(c) => {
            println!(
                "[config/images] Wrote {} images ({} blobs, {} bytes, checksums verified) to {}",
                c.images.len(),
                c.blobs,
                c.bytes,
                out.display()
            );
            for i in &c.images {
                println!("[config/images]   {i}");
            }
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// The snapshotter containerd's CRI plugin unpacks images with (images must be unpacked there
/// for the kubelet to start containers from them).
fn cri_snapshotter(client: &CriClient) -> Option<String> {
    let status = client.status(true).ok()?;
    let config: serde_json::Value = serde_json::from_str(status.info.get("config")?).ok()?;
    config
        .pointer("/containerd/snapshotter")
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `kubeadm config images import FILE`.
pub fn import(root: &Path, args: &ImagesImportArgs) -> Result<()> {
    // The whole archive is checked before the runtime sees any of it.
    let contents = bundle::check(&args.bundle)?;
    banner(args.dry_run);
    println!(
        "[config/images] {}: {} images, {} blobs, {} bytes, checksums verified",
        args.bundle.display(),
        contents.images.len(),
        contents.blobs,
        contents.bytes
    );
    let endpoint = match &args.cri_socket {
        Some(s) => s.clone(),
        None => {
            let probe = DryRunEffects::new(root, Box::new(std::io::sink()));
            let mut n = kubeadm_api::v1beta4::NodeRegistrationOptions::default();
            defaults::cri_socket(&mut n, false, &host::facts(&probe))
                .map_err(|e| Error::with_hint(e.to_string(), "choose one with --cri-socket"))?;
            n.cri_socket
        }
    };
    let fx = effects(root, args.dry_run);
    let socket = socket_on_host(fx.as_ref(), &endpoint)?;
    let file = args.bundle.display().to_string();
    let mut argv: Vec<String> = vec![
        "--address".into(),
        socket,
        "--namespace".into(),
        CRI_NAMESPACE.into(),
        "images".into(),
        "import".into(),
    ];
    let client = if args.dry_run {
        container_runtime::connect_client(fx.as_ref(), &endpoint).ok()
    } else {
        Some(container_runtime::connect_client(fx.as_ref(), &endpoint)?)
    };
    if let Some(s) = client.as_ref().and_then(cri_snapshotter) {
        argv.push("--snapshotter".into());
        argv.push(s);
    }
    argv.push(file.clone());
    let argv_ref: Vec<&str> = argv.iter().map(String::as_str).collect();
    if args.dry_run {
        for i in &contents.images {
            println!("[dryrun] Would load {i} into the {CRI_NAMESPACE} namespace of {endpoint}");
        }
        fx.run(CommandKind::Mutate, &args.ctr, &argv_ref)?;
        return Ok(());
    }
    let o = fx.run(CommandKind::Mutate, &args.ctr, &argv_ref)?;
    if !o.success() {
        return Err(ctr_failed(&args.ctr, "import", &o));
    }
    // What counts is what the kubelet will see: ask the CRI for every image.
    let client = client.ok_or_else(|| Error::msg("no CRI client"))?;
    let mut missing = Vec::new();
    for i in &contents.images {
        if client.image_exists(i)? {
            println!("[config/images] Loaded {i}");
        } else {
            missing.push(i.clone());
        }
    }
    if !missing.is_empty() {
        return Err(Error::with_hint(
            format!(
                "after loading {file}, the container runtime at {endpoint} does not list {}",
                missing.join(", ")
            ),
            format!(
                "the runtime must be containerd with its CRI plugin keeping images in the {CRI_NAMESPACE} namespace"
            ),
        ));
    }
    Ok(())
}
