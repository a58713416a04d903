//! `kubeadm reset`: undo what init or join did on this node, and nothing else.
//!
//! Only known paths are touched, always under the effects root; directories are emptied without
//! following symbolic links (the effects layer guarantees it); a file that cannot be removed is
//! reported, not fatal. Commands that act on the whole host (stopping the kubelet, flushing
//! iptables) run only when the host's systemd is visible under the root, or the root is `/`.

use kubeadm_api::v1beta4::ResetConfiguration;
use kubeadm_effects::Effects;
use kubeadm_workflow::Workflow;

use crate::error::Error;

pub mod cleanup_node;
pub mod preflight;
pub mod remove_etcd_member;

/// kubeconfig files reset deletes from /etc/kubernetes.
pub const KUBECONFIG_FILES: &[&str] = &[
    "admin.conf",
    "super-admin.conf",
    "kubelet.conf",
    "bootstrap-kubelet.conf",
    "controller-manager.conf",
    "scheduler.conf",
];

/// Command-line choices of `kubeadm reset`.
#[derive(Debug, Clone, Default)]
pub struct ResetOptions {
    /// `--force`: do not ask.
    pub force: bool,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--cleanup-cni` (beyond upstream): also empty /etc/cni/net.d.
    pub cleanup_cni: bool,
    /// `--cleanup-iptables` (beyond upstream): also flush iptables and IPVS rules.
    pub cleanup_iptables: bool,
}

/// What reset phases see.
pub struct ResetContext {
    /// The resolved ResetConfiguration.
    pub cfg: ResetConfiguration,
    /// Every side effect goes through here.
    pub fx: Box<dyn Effects>,
    /// Command-line choices.
    pub opts: ResetOptions,
    /// How to ask the operator for confirmation (injected so tests can answer).
    pub confirm: fn() -> bool,
    /// What was left alone, for the closing message.
    pub not_cleaned: Vec<String>,
    /// Whether "No etcd config found" was already said (remove-etcd-member and cleanup-node
    /// both look for the manifest; the operator is told once).
    pub external_etcd_said: bool,
}

/// The `kubeadm reset` phase tree.
pub fn reset_workflow() -> Workflow<ResetContext, Error> {
    Workflow {
        command: "reset",
        phases: vec![
            preflight::phase(),
            remove_etcd_member::phase(),
            cleanup_node::phase(),
        ],
    }
}

/// Asks on standard input; anything but y/yes (including end of input) is a no.
pub fn ask_stdin() -> bool {
    use std::io::Write;
    print!("[reset] Are you sure you want to proceed? [y/N]: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    match std::io::stdin().read_line(&mut line) {
        Ok(_) => matches!(line.trim().to_lowercase().as_str(), "y" | "yes"),
        Err(_) => false,
    }
}
