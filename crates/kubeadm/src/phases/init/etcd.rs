//! `init phase etcd local`: the static Pod manifest of a single-member local etcd.

use std::path::Path;

use kubeadm_render::staticpod::MANIFESTS_DIR;
use kubeadm_render::{etcd, pod_yaml};
use kubeadm_workflow::Phase;

use super::InitContext;
use super::manifests::{ensure_private_dir, load_patches, report_patches, write_component};
use crate::error::{Error, Result};

/// `etcd` with its `local` sub-phase (runs only with local etcd).
pub fn phase() -> Phase<InitContext, Error> {
    Phase::group(
        "etcd",
        "Generate static Pod manifest file for local etcd",
        vec![
            Phase::leaf("local", "Generate the static Pod manifest file for a local, single-node local etcd instance", run_etcd_local).flags(&["cert-dir", "config", "image-repository", "patches", "dry-run", "control-plane-mode"])
                .when(|c| c.cfg.local_etcd().is_some()),
        ],
    )
}

fn run_etcd_local(ctx: &mut InitContext) -> Result<()> {
    let Some(local) = ctx.cfg.local_etcd().cloned() else {
        return Ok(());
    };
    let pod = local_pod(ctx, &local)?;
    // etcd's data directory is private to it (upstream creates it 0700 before the manifest).
    ensure_private_dir(ctx, Path::new(&local.data_dir), 0o700)?;
    if !ctx.cfg.control_plane.systemd() {
        println!("[etcd] Creating static Pod manifest for local etcd in {MANIFESTS_DIR:?}");
    }
    write_component(ctx, "etcd", &pod)
}

/// The local etcd's manifest as it would be written (patches applied): shared with `upgrade`.
pub(crate) fn render_local(
    ctx: &InitContext,
    local: &kubeadm_api::v1beta4::LocalEtcd,
) -> Result<String> {
    Ok(pod_yaml(&local_pod(ctx, local)?)?)
}

/// The local etcd's Pod (patches applied): its manifest or, in systemd mode, its service.
pub(crate) fn local_pod(
    ctx: &InitContext,
    local: &kubeadm_api::v1beta4::LocalEtcd,
) -> Result<k8s_openapi::api::core::v1::Pod> {
    let patches = load_patches(ctx)?;
    let mut pod = etcd::pod(&ctx.cfg, local, &[]);
    if let Some(set) = &patches {
        let (patched, applied) = set.apply_pod("etcd", pod)?;
        report_patches("etcd", &applied);
        pod = patched;
    }
    Ok(pod)
}
