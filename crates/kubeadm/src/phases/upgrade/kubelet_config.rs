//! `upgrade apply|node phase kubelet-config`: this node's `/var/lib/kubelet/config.yaml` (and
//! instance config) from the cluster's KubeletConfiguration, rendered by init's kubelet code;
//! the previous file is kept under `/etc/kubernetes/tmp/kubeadm-kubelet-config-<timestamp>/`.
//! The kubelet is not restarted (as upstream: restart it after upgrading its package).

use std::path::Path;

use kubeadm_effects::Content;
use kubeadm_render::kubelet;

use super::control_plane::{private_tmp_dir, timestamp};
use super::{UpgradeContext, leaf};
use crate::error::{Error, Result};
use crate::phases::init::kubelet_start::{kubelet_files, write_kubelet_files};

/// `kubelet-config`.
pub fn phase() -> kubeadm_workflow::Phase<UpgradeContext, Error> {
    leaf(
        "kubelet-config",
        "Upgrade the kubelet configuration for this node",
        run,
    )
}

fn run(ctx: &mut UpgradeContext) -> Result<()> {
    let (config, instance) = ctx.with_init(|ictx| kubelet_files(ictx))?;
    let path = Path::new(kubelet::CONFIG_PATH);
    if let Some(old) = ctx.fx.read(path)? {
        let dir = private_tmp_dir(ctx, &format!("kubeadm-kubelet-config-{}", timestamp()))?;
        let backup = dir.join("config.yaml");
        println!(
            "[upgrade] Backing up kubelet config file to {:?}",
            backup.display()
        );
        ctx.fx.write_file(&backup, Content::Plain(old), 0o600)?;
    }
    let cfg = ctx.target()?;
    write_kubelet_files(ctx.fx.as_ref(), &cfg, config, instance)?;
    ctx.fx.sync()?;
    println!(
        "[upgrade/kubelet-config] The kubelet configuration for this node was successfully upgraded!"
    );
    Ok(())
}
