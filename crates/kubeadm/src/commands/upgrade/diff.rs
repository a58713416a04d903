//! `kubeadm upgrade diff [version]`: a unified diff of every static Pod manifest `upgrade apply`
//! would write (in controlPlaneMode: systemd, every unit and env file), against the live one,
//! rendered by the same code (nothing is written).

use std::path::Path;

use kubeadm_render::staticpod;

use super::{load_config, read_only_context};
use crate::cli::UpgradeDiffArgs;
use crate::error::Result;
use crate::phases::upgrade::control_plane::render_all;

/// Runs `upgrade diff`.
pub fn run(root: &Path, args: &UpgradeDiffArgs) -> Result<()> {
    let cfg = load_config(&args.common)?;
    let target = args
        .version
        .clone()
        .or_else(|| Some(cfg.diff.kubernetes_version.clone()).filter(|v| !v.is_empty()));
    let context = args
        .context_lines
        .or_else(|| {
            usize::try_from(cfg.diff.context_lines)
                .ok()
                .filter(|n| *n > 0)
        })
        .unwrap_or(3);
    let mut ctx = read_only_context(root, &args.common, target, Default::default());
    // controlPlaneMode: systemd: the units and env files instead of the manifests.
    let files = if crate::services::installed(ctx.fx.as_ref()) {
        crate::phases::upgrade::services::planned_files(&mut ctx)?
    } else {
        let mut files = Vec::new();
        for (component, new) in render_all(&mut ctx)? {
            let path = staticpod::manifest_path(component);
            let old = ctx.fx.read_to_string(Path::new(&path))?.unwrap_or_default();
            files.push((path, old, new));
        }
        files
    };
    for (path, old, new) in files {
        if old == new {
            continue;
        }
        let diff = similar::TextDiff::from_lines(&old, &new);
        print!(
            "{}",
            diff.unified_diff()
                .context_radius(context)
                .header(&path, "new manifest")
        );
    }
    Ok(())
}
