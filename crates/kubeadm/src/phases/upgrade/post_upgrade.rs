//! `upgrade apply|node phase post-upgrade`: what each version's upgrade needs after the rest.
//! For every supported minor that is the kubeadm:cluster-admins binding (1.29 and later), which
//! admin.conf's group relies on, and the control-plane Nodes' labels and taints of the target
//! minor (upgrades to 1.24 and 1.25); then upstream's closing advice.

use super::{Mode, UpgradeContext, leaf};
use crate::error::{Error, Result};
use crate::phases::init::api_session::cluster_admins;

/// `post-upgrade`.
pub fn phase() -> kubeadm_workflow::Phase<UpgradeContext, Error> {
    leaf("post-upgrade", "Run post upgrade tasks", run)
}

fn run(ctx: &mut UpgradeContext) -> Result<()> {
    if ctx.opts.mode == Mode::Apply {
        ctx.with_writer(|c, cfg| async move {
            cluster_admins(&c, &cfg).await?;
            super::node_roles::migrate(&c, &cfg).await
        })?;
        let v = ctx.target_version()?;
        println!();
        println!(
            "[upgrade] SUCCESS! A control plane node of your cluster was upgraded to \"{v}\"."
        );
    } else {
        println!("[upgrade] The configuration for this node was successfully upgraded!");
    }
    println!();
    println!(
        "[upgrade] Now please proceed with upgrading the rest of the nodes by following the right order, and restart the kubelet on this node once its package is upgraded."
    );
    Ok(())
}
