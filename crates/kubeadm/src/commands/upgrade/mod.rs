//! `kubeadm upgrade plan|apply|diff|node`: flags merged with the UpgradeConfiguration of
//! `--config`, then plan and diff read and print, apply and node run their phase trees.

pub mod diff;
pub mod plan;

use std::path::Path;
use std::time::Duration;

use clap::ArgMatches;
use kubeadm_api::upgrade::Unstable;
use kubeadm_api::v1beta4::UpgradeConfiguration;

use super::read_config;
use crate::cli::{
    UpgradeApplyArgs, UpgradeChangeArgs, UpgradeCommand, UpgradeCommonArgs, UpgradeNodeArgs,
};
use crate::error::{Error, Result};
use crate::phases::upgrade::{self, Mode, UpgradeContext, UpgradeOptions};

/// Runs an `upgrade` sub-command; `matches` are the `upgrade` matches (for `… phase …`).
pub fn run(root: &Path, cmd: UpgradeCommand, matches: Option<&ArgMatches>) -> Result<()> {
    let sub = |name: &str| matches.and_then(|m| m.subcommand_matches(name));
    match cmd {
        UpgradeCommand::Plan(a) => plan::run(root, &a),
        UpgradeCommand::Diff(a) => diff::run(root, &a),
        UpgradeCommand::Apply(a) => match sub("apply") {
            Some(m) => crate::phases::dispatch(m, a.as_ref(), |a, _, phase| apply(root, a, phase)),
            None => apply(root, &a, None),
        },
        UpgradeCommand::Node(a) => match sub("node") {
            Some(m) => crate::phases::dispatch(m, a.as_ref(), |a, _, phase| node(root, a, phase)),
            None => node(root, &a, None),
        },
    }
}

/// The UpgradeConfiguration of `--config` (defaulted and validated), or the defaults.
pub fn load_config(common: &UpgradeCommonArgs) -> Result<UpgradeConfiguration> {
    let mut cfg = match &common.config {
        Some(path) => {
            let docs = read_config(path)?;
            docs.upgrade.ok_or_else(|| {
                Error::with_hint(
                    format!("{} holds no UpgradeConfiguration", path.display()),
                    "add a document with apiVersion: kubeadm.k8s.io/v1beta4 and kind: UpgradeConfiguration",
                )
            })?
        }
        None => UpgradeConfiguration::default(),
    };
    kubeadm_api::defaults::upgrade(&mut cfg);
    let file = common
        .config
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "flags".into());
    kubeadm_api::validate::upgrade(&cfg)
        .into_result()
        .map_err(|errors| kubeadm_api::ConfigError::Invalid { file, errors })?;
    Ok(cfg)
}

/// `timeouts.upgradeManifests`, else upstream's default (kubeadm-api's, the one owner).
fn manifests_timeout(cfg: &UpgradeConfiguration) -> Duration {
    kubeadm_api::defaults::timeout(cfg.timeouts.as_ref(), |t| t.upgrade_manifests)
}

/// `--etcdutl`, else `etcdutl` on PATH.
fn etcdutl(change: &UpgradeChangeArgs) -> String {
    change
        .etcdutl
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "etcdutl".into())
}

fn union(a: &[String], b: &[String]) -> Vec<String> {
    let mut v: Vec<String> = a.iter().chain(b).cloned().collect();
    v.sort();
    v.dedup();
    v
}

fn run_workflow(
    root: &Path,
    opts: UpgradeOptions,
    skips: &[String],
    phase: Option<&str>,
) -> Result<()> {
    let dry_run = opts.dry_run;
    let mode = opts.mode;
    let fx = super::init::effects(root, dry_run);
    if dry_run {
        println!(
            "[dryrun] Running in dry-run mode: nothing will be written and no object will be changed"
        );
    }
    let mut ctx = UpgradeContext::new(opts, std::sync::Arc::from(fx));
    let (workflow, name) = match mode {
        Mode::Apply => (upgrade::apply_workflow(), "upgrade apply"),
        Mode::Node => (upgrade::node_workflow(), "upgrade node"),
    };
    workflow
        .run(&mut ctx, phase, skips, |path| super::on_phase(name, path))
        .map_err(|e| super::workflow_error(e, name))?;
    ctx.fx.sync()?;
    if dry_run && phase.is_none() {
        println!(
            "[dryrun] Finished dry-running successfully. Above are the resources that would be created"
        );
    }
    Ok(())
}

/// `kubeadm upgrade apply [version]` or `kubeadm upgrade apply phase <path>`.
pub fn apply(root: &Path, args: &UpgradeApplyArgs, phase: Option<&str>) -> Result<()> {
    let cfg = load_config(&args.common)?;
    let a = &cfg.apply;
    let target = args
        .version
        .clone()
        .or_else(|| Some(a.kubernetes_version.clone()).filter(|v| !v.is_empty()))
        .ok_or_else(|| {
            Error::with_hint(
                "missing one or more required arguments: specify a version to upgrade to",
                "run `kubeadm upgrade plan` to see the versions you can upgrade to, then `kubeadm upgrade apply <version>`",
            )
        })?;
    let opts = UpgradeOptions {
        mode: Mode::Apply,
        target: Some(target),
        dry_run: args.change.dry_run || a.dry_run == Some(true),
        force: args.force || a.force_upgrade == Some(true),
        yes: args.yes,
        etcd_upgrade: args.change.etcd_upgrade.or(a.etcd_upgrade).unwrap_or(true),
        certificate_renewal: args
            .change
            .certificate_renewal
            .or(a.certificate_renewal)
            .unwrap_or(true),
        unstable: Unstable {
            experimental: args.allow_experimental_upgrades
                || a.allow_experimental_upgrades == Some(true),
            release_candidates: args.allow_release_candidate_upgrades
                || a.allow_rc_upgrades == Some(true),
        },
        ignore_preflight_errors: union(
            &args.common.ignore_preflight_errors,
            &a.ignore_preflight_errors,
        ),
        patches: args
            .change
            .patches
            .clone()
            .or_else(|| a.patches.as_ref().map(|p| p.directory.clone())),
        kubeconfig: args.common.kubeconfig.clone(),
        upgrade_manifests_timeout: manifests_timeout(&cfg),
        etcdutl: etcdutl(&args.change),
        image_pull_policy: a.image_pull_policy.clone(),
        image_pull_serial: a.image_pull_serial.unwrap_or(true),
    };
    let skips = if args.change.skip_phases.is_empty() {
        a.skip_phases.clone()
    } else {
        args.change.skip_phases.clone()
    };
    run_workflow(root, opts, &skips, phase)
}

/// `kubeadm upgrade node` or `kubeadm upgrade node phase <path>`.
pub fn node(root: &Path, args: &UpgradeNodeArgs, phase: Option<&str>) -> Result<()> {
    let cfg = load_config(&args.common)?;
    let n = &cfg.node;
    // A worker has no admin.conf; upstream falls back to the kubelet's credentials.
    let mut kubeconfig = args.common.kubeconfig.clone();
    let fx = super::init::effects(root, true);
    if kubeconfig == upgrade::cluster::ADMIN_CONF && !fx.exists(Path::new(&kubeconfig)) {
        kubeconfig = upgrade::cluster::KUBELET_CONF.to_string();
    }
    let opts = UpgradeOptions {
        mode: Mode::Node,
        target: None,
        dry_run: args.change.dry_run || n.dry_run == Some(true),
        force: false,
        yes: true,
        etcd_upgrade: args.change.etcd_upgrade.or(n.etcd_upgrade).unwrap_or(true),
        certificate_renewal: args
            .change
            .certificate_renewal
            .or(n.certificate_renewal)
            .unwrap_or(true),
        unstable: Unstable::default(),
        ignore_preflight_errors: union(
            &args.common.ignore_preflight_errors,
            &n.ignore_preflight_errors,
        ),
        patches: args
            .change
            .patches
            .clone()
            .or_else(|| n.patches.as_ref().map(|p| p.directory.clone())),
        kubeconfig,
        upgrade_manifests_timeout: manifests_timeout(&cfg),
        etcdutl: etcdutl(&args.change),
        image_pull_policy: n.image_pull_policy.clone(),
        image_pull_serial: n.image_pull_serial.unwrap_or(true),
    };
    let skips = if args.change.skip_phases.is_empty() {
        n.skip_phases.clone()
    } else {
        args.change.skip_phases.clone()
    };
    run_workflow(root, opts, &skips, phase)
}

/// A context that only reads (plan, diff): its effects are a silent recorder.
pub fn read_only_context(
    root: &Path,
    common: &UpgradeCommonArgs,
    target: Option<String>,
    unstable: Unstable,
) -> UpgradeContext {
    let fx: Box<dyn kubeadm_effects::Effects> = Box::new(kubeadm_effects::DryRunEffects::new(
        root,
        Box::new(std::io::sink()),
    ));
    let opts = UpgradeOptions {
        mode: Mode::Apply,
        target,
        dry_run: true,
        force: false,
        yes: true,
        etcd_upgrade: true,
        certificate_renewal: false,
        unstable,
        ignore_preflight_errors: common.ignore_preflight_errors.clone(),
        patches: None,
        kubeconfig: common.kubeconfig.clone(),
        upgrade_manifests_timeout: kubeadm_api::defaults::timeout(None, |t| t.upgrade_manifests),
        etcdutl: "etcdutl".into(),
        image_pull_policy: kubeadm_api::defaults::DEFAULT_IMAGE_PULL_POLICY.into(),
        image_pull_serial: true,
    };
    UpgradeContext::new(opts, std::sync::Arc::from(fx))
}

/// Attaches `upgrade apply phase …` and `upgrade node phase …` (generated from the phase trees)
/// and their phase lists in the help.
pub fn with_phases(upgrade: clap::Command) -> clap::Command {
    use clap::Args;
    upgrade
        .mut_subcommand("apply", |apply| {
            crate::phases::attach(
                apply,
                &upgrade::apply_workflow(),
                UpgradeApplyArgs::augment_args,
            )
        })
        .mut_subcommand("node", |node| {
            crate::phases::attach(
                node,
                &upgrade::node_workflow(),
                UpgradeNodeArgs::augment_args,
            )
        })
}
