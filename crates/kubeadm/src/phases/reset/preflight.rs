//! `reset phase preflight`: the warning and the operator's confirmation (unless `--force`).

use kubeadm_workflow::Phase;

use super::ResetContext;
use crate::error::{Error, Result};

/// `preflight`.
pub fn phase() -> Phase<ResetContext, Error> {
    Phase::leaf("preflight", "Run reset pre-flight checks", run).flags(&[
        "config",
        "ignore-preflight-errors",
        "force",
        "dry-run",
    ])
}

pub(super) fn run(ctx: &mut ResetContext) -> Result<()> {
    println!(
        "[reset] WARNING: Changes made to this host by 'kubeadm init' or 'kubeadm join' will be reverted."
    );
    // A dry run changes nothing, so it needs no confirmation.
    let confirmed = ctx.opts.force || ctx.opts.dry_run || (ctx.confirm)();
    if !confirmed {
        return Err(Error::with_hint(
            "aborted reset operation",
            "answer 'y' to the prompt, or pass --force to reset without asking",
        ));
    }
    Ok(())
}
