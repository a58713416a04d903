//! `kubeadm host prepare` (beyond upstream): fixes the kernel modules, sysctls and swap the
//! pre-flight checks complain about, and says what it changed.

use std::path::Path;

use kubeadm_preflight::prepare::{self, PrepareOptions};

use super::init::effects;
use crate::cli::{HostCommand, HostPrepareArgs, ProxyMode};
use crate::error::Result;

/// Runs a `host` sub-command.
pub fn run(root: &Path, command: HostCommand) -> Result<()> {
    match command {
        HostCommand::Prepare(args) => prepare_host(root, &args),
    }
}

fn prepare_host(root: &Path, args: &HostPrepareArgs) -> Result<()> {
    let fx = effects(root, args.dry_run);
    if args.dry_run {
        println!(
            "[dryrun] Running in dry-run mode: nothing will be written and no command that changes the host will run"
        );
    }
    let opts = PrepareOptions {
        ipvs: args.kube_proxy_mode == ProxyMode::Ipvs,
    };
    let report = prepare::prepare(fx.as_ref(), &opts)?;
    for note in &report.notes {
        println!("[host] Note: {note}");
    }
    if report.changes.is_empty() {
        println!(
            "[host] Nothing to change: kernel modules, sysctls and swap are already as Kubernetes needs them"
        );
    } else if args.dry_run {
        for c in &report.changes {
            println!("[host] Would {c}");
        }
    } else {
        for c in &report.changes {
            println!("[host] Done: {c}");
        }
        println!(
            "[host] The host is prepared; `kubeadm init phase preflight` (or `kubeadm join phase preflight`) checks it"
        );
    }
    Ok(())
}
