//! What the static Pod phases share (init's etcd and control-plane, join's control-plane-prepare
//! and etcd): `--patches` loading and reporting, host facts mounted into the control plane,
//! private directories and the manifest writer.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use kubeadm_effects::Content;
use kubeadm_render::patches::{self, PatchSet};
use kubeadm_render::staticpod::{self, HostInfo, MANIFESTS_DIR};

use k8s_openapi::api::core::v1::Pod;
use kubeadm_render::pod_yaml;

use super::InitContext;
use crate::error::{Error, Result};
use crate::services;

/// Mode of static Pod manifests.
const MANIFEST_MODE: u32 = 0o600;

/// Reads and parses every file of the configured patches directory (none configured → `None`).
/// A malformed file is an error before anything is written.
pub fn load_patches(ctx: &InitContext) -> Result<Option<PatchSet>> {
    let Some(dir) = ctx
        .cfg
        .init
        .patches
        .as_ref()
        .map(|p| p.directory.clone())
        .filter(|d| !d.is_empty())
    else {
        return Ok(None);
    };
    let path = Path::new(&dir);
    if !ctx.fx.exists(path) {
        return Err(Error::with_hint(
            format!("the patches directory {dir} does not exist"),
            "create it, or drop --patches / patches.directory",
        ));
    }
    let mut entries = Vec::new();
    for name in ctx.fx.list_dir(path)? {
        let bytes = if !matches!(patches::parse_name(&name), Ok(None)) {
            ctx.fx.read(&path.join(&name))?.unwrap_or_default()
        } else {
            Vec::new()
        };
        entries.push((name, bytes));
    }
    let set = PatchSet::parse(&dir, entries)?;
    // Upstream reads a patches directory once per run and says so once.
    static ANNOUNCED: AtomicBool = AtomicBool::new(false);
    if !ANNOUNCED.swap(true, Ordering::Relaxed) {
        println!("[patches] Reading patches from path {dir:?}");
        if !set.files.is_empty() {
            let names: Vec<&str> = set.files.iter().map(|f| f.file.as_str()).collect();
            println!(
                "[patches] Found the following patch files: [{}]",
                names.join(" ")
            );
        }
        if !set.ignored.is_empty() {
            println!(
                "[patches] Ignored the following files: [{}]",
                set.ignored.join(" ")
            );
        }
    }
    Ok(Some(set))
}

/// Prints one line per patch applied to `target`, as upstream does.
pub(crate) fn report_patches(target: &str, applied: &[&patches::PatchFile]) {
    for f in applied {
        println!(
            "[patches] Applied patch of type {:?} to target {target:?}",
            f.kind.media_type()
        );
    }
}

/// Which of the host's CA directories exist (they are mounted into the control plane).
pub(crate) fn host_info(ctx: &InitContext) -> HostInfo {
    let minor = ctx.cfg.info().minor;
    HostInfo {
        ca_dirs: staticpod::ca_cert_extra_dirs(minor)
            .iter()
            .filter(|d| ctx.fx.exists(Path::new(d)))
            .map(|d| d.to_string())
            .collect(),
        proxy_env: staticpod::proxy_env(std::env::vars()),
        external_ca: {
            let cd = Path::new(&ctx.cfg.cluster.certificates_dir);
            ctx.fx.exists(&cd.join("ca.crt")) && !ctx.fx.exists(&cd.join("ca.key"))
        },
    }
}

/// Creates `dir` with `mode` when it is missing (its missing parents get 0755).
/// Once per run and directory: a dry run cannot see the directories it only pretended to
/// create, and would otherwise announce them again for every file.
pub(crate) fn ensure_private_dir(ctx: &InitContext, dir: &Path, mode: u32) -> Result<()> {
    static ENSURED: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    let first = ENSURED
        .lock()
        .map(|mut set| set.insert(dir.to_path_buf()))
        .unwrap_or(true);
    if first && !ctx.fx.exists(dir) {
        if let Some(parent) = dir.parent().filter(|p| !ctx.fx.exists(p)) {
            ctx.fx.create_dir_all(parent, 0o755)?;
        }
        ctx.fx.create_dir_all(dir, mode)?;
    }
    Ok(())
}

/// Writes what runs a component: its static Pod manifest, or in systemd mode its unit and
/// environment file (built from the same Pod), then starts the service.
pub(crate) fn write_component(ctx: &InitContext, component: &str, pod: &Pod) -> Result<()> {
    if ctx.cfg.control_plane.systemd() {
        let files = services::files(&ctx.cfg.control_plane, pod)?;
        services::write(ctx.fx.as_ref(), &files)?;
        return services::start(ctx.fx.as_ref(), component);
    }
    write_manifest(ctx, component, pod_yaml(pod)?)
}

/// Writes a static Pod manifest (0600) into the manifests directory.
pub(crate) fn write_manifest(ctx: &InitContext, component: &str, yaml: String) -> Result<()> {
    let path = staticpod::manifest_path(component);
    // Upstream creates the manifests directory 0700.
    ensure_private_dir(ctx, Path::new(MANIFESTS_DIR), 0o700)?;
    ctx.fx.write_file(
        Path::new(&path),
        Content::Plain(yaml.into_bytes()),
        MANIFEST_MODE,
    )?;
    Ok(())
}
