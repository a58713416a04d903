//! The `kubeadm upgrade apply` and `kubeadm upgrade node` phase trees (upstream order) and what
//! their phases share: the cluster as read through the kubeconfig (kubeadm-config,
//! kubelet-config, kube-proxy, `/version`, the Nodes), and the target configuration for this
//! node, from which init's own builders render manifests, kubelet files and cluster objects.
//!
//! apply: preflight · control-plane · upload-config (kubeadm, kubelet) · kubelet-config ·
//! bootstrap-token · addon (coredns, kube-proxy) · post-upgrade.
//! node: preflight · control-plane · kubelet-config · addon · post-upgrade.

pub mod addon;
pub mod bootstrap_token;
pub mod certs;
pub mod cluster;
pub mod control_plane;
pub mod etcd_backup;
pub mod health_job;
pub mod kubelet_config;
pub mod node_roles;
pub mod post_upgrade;
pub mod preflight;
pub mod services;
pub mod upload_config;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kubeadm_api::KubeVersion;
use kubeadm_api::config::InitConfig;
use kubeadm_api::upgrade::Unstable;
use kubeadm_effects::Effects;
use kubeadm_workflow::{Phase, Workflow};

use crate::error::{Error, Result};
use crate::phases::init::{InitContext, InitOptions};
pub use cluster::ClusterView;

/// Which command runs the phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `upgrade apply`: the first control-plane node, the cluster's objects too.
    Apply,
    /// `upgrade node`: another control-plane node or a worker; the cluster's version is kept.
    Node,
}

/// Command-line choices of `kubeadm upgrade apply|node` (flags merged with the
/// UpgradeConfiguration).
#[derive(Debug, Clone)]
pub struct UpgradeOptions {
    /// apply or node.
    pub mode: Mode,
    /// The version asked for (`upgrade apply <version>`); `None` for `upgrade node`.
    pub target: Option<String>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--force`: skippable version-policy errors pass, and no confirmation is asked.
    pub force: bool,
    /// `--yes`: no confirmation.
    pub yes: bool,
    /// `--etcd-upgrade` (default true).
    pub etcd_upgrade: bool,
    /// `--certificate-renewal` (default true).
    pub certificate_renewal: bool,
    /// `--allow-experimental-upgrades`, `--allow-release-candidate-upgrades`.
    pub unstable: Unstable,
    /// `--ignore-preflight-errors`.
    pub ignore_preflight_errors: Vec<String>,
    /// `--patches`.
    pub patches: Option<String>,
    /// `--kubeconfig`.
    pub kubeconfig: String,
    /// `timeouts.upgradeManifests` (default 5m).
    pub upgrade_manifests_timeout: Duration,
    /// `--etcdutl`: the program that restores etcd's data from the snapshot.
    pub etcdutl: String,
    /// UpgradeConfiguration `apply.imagePullPolicy` or `node.imagePullPolicy` (default
    /// IfNotPresent): how a control-plane node's preflight pulls the target's images.
    pub image_pull_policy: String,
    /// UpgradeConfiguration `apply.imagePullSerial` or `node.imagePullSerial` (default true).
    pub image_pull_serial: bool,
}

/// What upgrade phases see.
pub struct UpgradeContext {
    /// Command-line options.
    pub opts: UpgradeOptions,
    /// Every side effect goes through here.
    pub fx: Arc<dyn Effects>,
    /// The API client and the cluster as read (on first use).
    view: Option<ClusterView>,
    /// The target configuration for this node (on first use).
    target: Option<InitConfig>,
    /// The timestamped backup folder of this run's manifests (made on first swap).
    pub backup_dir: Option<PathBuf>,
}

impl UpgradeContext {
    /// A context; nothing is read until a phase needs it.
    pub fn new(opts: UpgradeOptions, fx: Arc<dyn Effects>) -> Self {
        UpgradeContext {
            opts,
            fx,
            view: None,
            target: None,
            backup_dir: None,
        }
    }

    /// The command's name as the kill points of the tests name it (`upgrade apply`,
    /// `upgrade node`; see [`crate::commands::KILL_AT_VAR`]).
    pub fn command(&self) -> &'static str {
        match self.opts.mode {
            Mode::Apply => "upgrade apply",
            Mode::Node => "upgrade node",
        }
    }

    /// The cluster as read through the kubeconfig (read once).
    pub fn view(&mut self) -> Result<&ClusterView> {
        if self.view.is_none() {
            self.view = Some(ClusterView::read(self.fx.as_ref(), &self.opts.kubeconfig)?);
        }
        self.view
            .as_ref()
            .ok_or_else(|| Error::msg("the cluster could not be read"))
    }

    /// The version this run upgrades to: the argument of `upgrade apply`, the cluster's
    /// ClusterConfiguration version for `upgrade node`.
    pub fn target_version(&mut self) -> Result<KubeVersion> {
        match self.opts.target.clone() {
            Some(t) => kubeadm_api::version::resolve(&t).map_err(|e| {
                Error::with_hint(
                    format!("upgrade version {t:?}: {e}"),
                    "name a version such as v1.32.0 (see `kubeadm upgrade plan`)",
                )
            }),
            None => Ok(self.view()?.cluster_version()?),
        }
    }

    /// The target configuration for this node (the cluster's, at the target version).
    pub fn target(&mut self) -> Result<InitConfig> {
        if let Some(t) = &self.target {
            return Ok(t.clone());
        }
        let version = self.target_version()?;
        let patches = self.opts.patches.clone();
        let timeout = self.opts.upgrade_manifests_timeout;
        self.view()?;
        let Some(view) = self.view.as_ref() else {
            return Err(Error::msg("the cluster could not be read"));
        };
        let cfg = view.target_config(self.fx.as_ref(), &version, patches, timeout)?;
        self.target = Some(cfg.clone());
        Ok(cfg)
    }

    /// The configuration as it is now, at the cluster's current version (what kubeadm would
    /// have applied before this upgrade; the addons' merge base when an object has no record).
    pub fn current(&mut self) -> Result<InitConfig> {
        let timeout = self.opts.upgrade_manifests_timeout;
        let fx = Arc::clone(&self.fx);
        let view = self.view()?;
        let version = view.cluster_version()?;
        view.target_config(fx.as_ref(), &version, None, timeout)
    }

    /// Runs `f` with a client for writes: the printing dry-run client under `--dry-run`, the
    /// real one otherwise; and the target configuration.
    pub fn with_writer<F, Fut>(&mut self, f: F) -> Result<()>
    where
        F: FnOnce(Client, InitConfig) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let cfg = self.target()?;
        let dry_run = self.opts.dry_run;
        let view = self.view()?;
        let client = if dry_run {
            let _guard = view.rt.enter();
            crate::dryrun_client::client(crate::dryrun_client::stdout())
        } else {
            view.client.clone()
        };
        view.rt.block_on(f(client, cfg))
    }

    /// Runs `f` on the view's runtime with the real client.
    pub fn block_on<F, Fut, T>(&mut self, f: F) -> Result<T>
    where
        F: FnOnce(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let view = self.view()?;
        view.rt.block_on(f(view.client.clone()))
    }

    /// Runs `f` on an init context holding the target configuration, then takes the effects
    /// layer back (init's manifest, kubelet and certificate code runs unchanged).
    pub fn with_init<R>(&mut self, f: impl FnOnce(&mut InitContext) -> Result<R>) -> Result<R> {
        let cfg = self.target()?;
        let opts = InitOptions {
            dry_run: self.opts.dry_run,
            ignore_preflight_errors: self.opts.ignore_preflight_errors.clone(),
            ..Default::default()
        };
        f(&mut InitContext::new(cfg, Arc::clone(&self.fx), opts))
    }
}

/// The `kubeadm upgrade apply` phase tree, in upstream order.
pub fn apply_workflow() -> Workflow<UpgradeContext, Error> {
    Workflow {
        command: "upgrade apply",
        phases: vec![
            preflight::phase(),
            control_plane::phase(),
            upload_config::phase(),
            kubelet_config::phase(),
            bootstrap_token::phase(),
            addon::phase(),
            post_upgrade::phase(),
        ],
    }
}

/// The `kubeadm upgrade node` phase tree, in upstream order.
pub fn node_workflow() -> Workflow<UpgradeContext, Error> {
    Workflow {
        command: "upgrade node",
        phases: vec![
            preflight::phase(),
            control_plane::phase(),
            kubelet_config::phase(),
            addon::phase(),
            post_upgrade::phase(),
        ],
    }
}

/// A leaf phase (shorthand for the phase files).
pub(crate) fn leaf(
    name: &'static str,
    short: &'static str,
    run: fn(&mut UpgradeContext) -> Result<()>,
) -> Phase<UpgradeContext, Error> {
    Phase::leaf(name, short, run)
}
