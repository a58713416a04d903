//! `upgrade apply|node phase preflight`: the version policy (apply), the cluster's health
//! (apply: the `CreateJob` check of [`super::health_job`]; control-plane Nodes Ready, this
//! node's static Pod manifests present) and, for apply, the operator's confirmation unless
//! `--yes`, `--force` or `--dry-run`; then, on a control-plane node, the pull of the target
//! version's images (init's ImagePull check, with UpgradeConfiguration's pull policy), as
//! upstream from 1.31.

use std::io::{BufRead, Write};

use kubeadm_render::staticpod;

use super::{Mode, UpgradeContext, cluster, health_job, leaf};
use crate::error::{Error, Result};

/// `preflight`.
pub fn phase() -> kubeadm_workflow::Phase<UpgradeContext, Error> {
    leaf("preflight", "Run upgrade pre-flight checks", run)
}

/// Whether `check` is in `--ignore-preflight-errors` (or `all`).
fn ignored(ctx: &UpgradeContext, check: &str) -> bool {
    ctx.opts
        .ignore_preflight_errors
        .iter()
        .any(|i| i.eq_ignore_ascii_case("all") || i.eq_ignore_ascii_case(check))
}

fn run(ctx: &mut UpgradeContext) -> Result<()> {
    println!(
        "[upgrade] Reading configuration from the \"kubeadm-config\" ConfigMap in namespace \"kube-system\"..."
    );
    let mode = ctx.opts.mode;
    let target = ctx.target_version()?;
    let force = ctx.opts.force;
    let unstable = ctx.opts.unstable;
    println!("[upgrade] Running cluster health checks");
    ctx.view()?;
    let mut problems = Vec::new();
    // Run even when ignored, as upstream: an ignored failure is a warning.
    if mode == Mode::Apply
        && let Some(p) = create_job(ctx)?
    {
        let p = format!("[{}]: {p}", health_job::CHECK);
        if ignored(ctx, health_job::CHECK) {
            eprintln!("[upgrade/health] WARNING {p}");
        } else {
            problems.push(p);
        }
    }
    let Some(view) = ctx.view.as_ref() else {
        return Err(Error::msg("the cluster could not be read"));
    };
    let not_ready: Vec<String> = view
        .nodes
        .iter()
        .filter(|n| n.control_plane && !n.ready)
        .map(|n| n.name.clone())
        .collect();
    // controlPlaneMode: systemd runs the control plane from units instead of manifests.
    let services = crate::services::installed(ctx.fx.as_ref());
    let cp_manifest = services || cluster::manifest(ctx.fx.as_ref(), "kube-apiserver").is_some();
    if !not_ready.is_empty() && !ignored(ctx, "ControlPlaneNodesReady") {
        problems.push(format!(
            "[ControlPlaneNodesReady]: there are NotReady control-planes in the cluster: [{}]",
            not_ready.join(" ")
        ));
    }
    if mode == Mode::Apply || cp_manifest {
        let missing: Vec<String> = [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
        ]
        .iter()
        .map(|c| {
            if services {
                kubeadm_render::service::unit_path(c)
            } else {
                staticpod::manifest_path(c)
            }
        })
        .filter(|p| !ctx.fx.exists(std::path::Path::new(p)))
        .collect();
        if !missing.is_empty() && !ignored(ctx, "StaticPodManifest") {
            problems.push(format!(
                "[StaticPodManifest]: missing static Pod manifests: [{}]",
                missing.join(" ")
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Error::with_hint(
            format!("the cluster is not healthy:\n{}", problems.join("\n")),
            "fix the problems above, or skip a check with --ignore-preflight-errors=<name>",
        ));
    }
    if mode == Mode::Node {
        return prepull(ctx, cp_manifest);
    }
    let cluster_version = view.api_version.clone();
    let report = kubeadm_api::upgrade::check(
        &cluster_version,
        &target,
        &view.kubelet_versions(),
        unstable,
    );
    println!("[upgrade/version] You have chosen to change the cluster version to \"{target}\"");
    println!("[upgrade/versions] Cluster version: {cluster_version}");
    if !report.allows(force) {
        return Err(Error::with_hint(
            format!(
                "the upgrade from {cluster_version} to {target} is not allowed:\n{}",
                report.describe()
            ),
            "pick a target `kubeadm upgrade plan` lists; --force lets the skippable problems pass",
        ));
    }
    if !report.errors.is_empty() {
        println!(
            "[upgrade/version] Found {} potential version compatibility errors but skipping since the --force flag is set:\n{}",
            report.errors.len(),
            report.describe()
        );
    }
    if !(ctx.opts.yes || force || ctx.opts.dry_run) {
        confirm()?;
    }
    prepull(ctx, true)
}

/// The target's images, present or pulled before any manifest changes (a control-plane node
/// only: a worker runs no static Pods). A failure is the `ImagePull` preflight error.
fn prepull(ctx: &mut UpgradeContext, control_plane: bool) -> Result<()> {
    if !control_plane {
        println!("[upgrade/preflight] Skipping prepull. Not a control plane node.");
        return Ok(());
    }
    let cfg = ctx.target()?;
    let how = crate::container_runtime::PreflightPull {
        prefix: "upgrade/preflight",
        policy: &ctx.opts.image_pull_policy,
        serial: ctx.opts.image_pull_serial,
    };
    crate::container_runtime::preflight_pull(
        ctx.fx.as_ref(),
        &cfg,
        &how,
        &ctx.opts.ignore_preflight_errors,
        ctx.opts.dry_run,
    )
}

/// Upstream's `CreateJob` check at the target version (`None`: passed or skipped). It runs
/// inside the effects layer's wait, so `--dry-run` only says what it would do, as upstream.
fn create_job(ctx: &mut UpgradeContext) -> Result<Option<String>> {
    let flavour = health_job::Flavour::of(&ctx.target_version()?);
    let cfg = ctx.target()?;
    let pause = kubeadm_api::images::pause_image(&cfg.cluster, cfg.info());
    let fx = ctx.fx.clone();
    let mut outcome = Ok(None);
    fx.wait_until(
        "the Job with the prefix \"upgrade-health-check\" in namespace \"kube-system\", created, to complete",
        // Each of its steps (list, create, wait) within the flavour's timeout.
        flavour.timeout * 3,
        &mut || {
            let (flavour, pause) = (flavour.clone(), pause.clone());
            outcome = ctx.block_on(|c| async move { Ok(health_job::run(c, flavour, pause).await.err()) });
            true
        },
    );
    outcome
}

/// Asks on the terminal, as upstream does.
fn confirm() -> Result<()> {
    print!("[upgrade] Are you sure you want to proceed? [y/N]: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    if matches!(line.trim(), "y" | "Y") {
        Ok(())
    } else {
        Err(Error::with_hint(
            "won't proceed; the user didn't answer (Y|y) in order to continue",
            "answer y, or pass --yes",
        ))
    }
}
