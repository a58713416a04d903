//! The `kubeadm init` phase tree: one module per top-level phase, named as the CLI names it
//! (`init phase upload-config` → `upload_config.rs`), plus what several phases share
//! ([`api_session`] for the API client, [`manifests`] for static Pod files).

pub mod addon;
pub mod api_session;
pub mod bootstrap_token;
pub mod certs;
pub mod control_plane;
pub mod etcd;
pub mod kubeconfig;
pub mod kubelet_finalize;
pub mod kubelet_start;
pub mod manifests;
pub mod mark_control_plane;
pub mod preflight;
pub mod show_join_command;
pub mod upload_certs;
pub mod upload_config;
pub mod wait_control_plane;

#[cfg(test)]
mod api_tests;

use std::sync::Arc;

use kubeadm_api::config::InitConfig;
use kubeadm_effects::Effects;
use kubeadm_workflow::{Phase, Workflow};

use crate::error::Error;

/// Command-line choices of `kubeadm init` that are not part of the configuration.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// `--dry-run` (or `dryRun: true` in the file).
    pub dry_run: bool,
    /// `--upload-certs`.
    pub upload_certs: bool,
    /// `--skip-token-print`.
    pub skip_token_print: bool,
    /// `--skip-certificate-key-print`.
    pub skip_certificate_key_print: bool,
    /// `--ignore-preflight-errors` (or the file's list).
    pub ignore_preflight_errors: Vec<String>,
}

/// What init phases see: the resolved configuration, the effects layer and the options.
pub struct InitContext {
    /// The resolved configuration.
    pub cfg: InitConfig,
    /// Every side effect goes through here.
    pub fx: Arc<dyn Effects>,
    /// Command-line options.
    pub opts: InitOptions,
    /// The API client of this run, made by the first API phase and reused by the others.
    pub api: Option<api_session::ApiSession>,
}

impl InitContext {
    /// A context for running init phases (also used by `kubeadm join --control-plane`, which runs
    /// the certs, kubeconfig and control-plane phases with a configuration built from the cluster's).
    pub fn new(cfg: InitConfig, fx: Arc<dyn Effects>, opts: InitOptions) -> Self {
        InitContext {
            cfg,
            fx,
            opts,
            api: None,
        }
    }
}

/// The `kubeadm init` phase tree, in upstream order. Phases are added here as they are
/// implemented; the help and `init phase` sub-commands follow automatically.
pub fn init_workflow() -> Workflow<InitContext, Error> {
    Workflow {
        command: "init",
        phases: {
            // Upstream order (1.28+): the files first, then the conversation with the API server.
            vec![
                Phase::leaf("preflight", "Run pre-flight checks", preflight::run).flags(&[
                    "config",
                    "cri-socket",
                    "image-repository",
                    "ignore-preflight-errors",
                    "dry-run",
                    "control-plane-mode",
                ]),
                certs::phase(),
                kubeconfig::phase(),
                etcd::phase(),
                control_plane::phase(),
                kubelet_start::phase(),
                Phase::leaf(
                    "wait-control-plane",
                    "Wait for the control plane to start",
                    wait_control_plane::run,
                )
                .flags(&["config", "dry-run"]),
                upload_config::phase(),
                upload_certs::phase(),
                mark_control_plane::phase(),
                bootstrap_token::phase(),
                kubelet_finalize::phase(),
                addon::phase(),
                show_join_command::phase(),
            ]
        },
    }
}
