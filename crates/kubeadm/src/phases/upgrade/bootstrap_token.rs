//! `upgrade apply phase bootstrap-token`: re-applies the bootstrap-token RBAC and cluster-info
//! through init's code (no token is created).

use std::path::Path;

use super::{UpgradeContext, leaf};
use crate::error::{Error, Result};
use crate::phases::init::bootstrap_token::bootstrap_token;

/// `bootstrap-token`.
pub fn phase() -> kubeadm_workflow::Phase<UpgradeContext, Error> {
    leaf(
        "bootstrap-token",
        "Configures bootstrap token and cluster-info RBAC rules",
        run,
    )
}

fn run(ctx: &mut UpgradeContext) -> Result<()> {
    let cfg = ctx.target()?;
    let ca_path = Path::new(&cfg.cluster.certificates_dir).join("ca.crt");
    let ca = ctx.fx.read(&ca_path)?.ok_or_else(|| {
        Error::with_hint(
            format!("{} does not exist", ca_path.display()),
            "run `kubeadm upgrade apply` on a control-plane node",
        )
    })?;
    ctx.with_writer(|c, cfg| async move {
        bootstrap_token(&c, &cfg, &ca).await?;
        println!(
            "[bootstrap-token] Configured RBAC rules to allow Node Bootstrap tokens to get nodes, post CSRs for a long term certificate credential, and auto-approve them"
        );
        println!(
            "[bootstrap-token] Configured RBAC rules to allow certificate rotation for all node client certificates in the cluster"
        );
        Ok(())
    })
}
