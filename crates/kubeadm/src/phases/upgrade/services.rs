//! `upgrade apply|node phase control-plane` on a node whose control plane runs as systemd
//! services (controlPlaneMode: systemd), in upstream's order (etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler).
//!
//! Every new unit and environment file is built first, from the same Pods a static Pod upgrade
//! writes, with the binary directory moved to the target's version (the path segment naming
//! the running version, `/opt/kubernetes/v1.31.2/bin`, becomes `v1.32.0`; a directory without
//! one is kept), and every new binary is checked (`ServiceBinary-<component>`): a missing or
//! wrong binary changes nothing. Then, per component: skip when unit and env file are
//! unchanged; keep the live ones under `/etc/kubernetes/tmp/kubeadm-backup-manifests-<timestamp>/`;
//! write the new ones; restart the service; wait, within `timeouts.upgradeManifests`, for the
//! component's health endpoint; on any failure write back every swapped file, restart those
//! services, and fail naming the component and the backup folder. etcd is saved as a snapshot
//! first; if the previous etcd does not come back, the error names the snapshot to restore.

use std::path::Path;

use k8s_openapi::api::core::v1::Pod;
use kubeadm_effects::Content;
use kubeadm_errors::Hint;
use kubeadm_preflight::{Check, ServiceBinary};
use kubeadm_render::pod_yaml;
use kubeadm_render::service::{self, ServiceFiles};

use super::control_plane::{backup_dir, wait_swapped};
use super::etcd_backup::{self, EtcdBackup};
use super::{UpgradeContext, certs};
use crate::error::{Error, Result};
use crate::phases::init::{control_plane, etcd};
use crate::services;
use crate::waiter::{self, go_duration};

/// Mode of the backups (the env files are private).
const BACKUP_MODE: u32 = 0o600;

/// One component's planned swap.
struct Planned {
    component: &'static str,
    pod: Pod,
    files: ServiceFiles,
    old_unit: Vec<u8>,
    old_env: Vec<u8>,
}

impl Planned {
    fn unchanged(&self) -> bool {
        self.old_unit == self.files.unit.as_bytes() && self.old_env == self.files.env.as_bytes()
    }
}

/// The directory of `program`'s binary at `version`: the path segment that names a version
/// (`v1.31.2`, `v3.5.15`) takes the new one; a directory without one stays.
pub fn binary_dir_at(program: &str, version: &str) -> String {
    let dir = Path::new(program)
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|| "/".into());
    dir.split('/')
        .map(|seg| {
            let v = seg.strip_prefix('v').unwrap_or("");
            let is_version = v.split('.').count() >= 2
                && v.split('.')
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
            if is_version { version } else { seg }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The phase on a systemd-mode node.
pub fn run(ctx: &mut UpgradeContext) -> Result<()> {
    let version = ctx.target_version()?;
    println!(
        "[upgrade/control-plane] Upgrading your systemd-hosted control plane to version \"{version}\"..."
    );
    let planned = plan(ctx)?;
    check_binaries(ctx, &planned)?;
    let timeout = ctx.opts.upgrade_manifests_timeout;
    let mut swapped: Vec<&Planned> = Vec::new();
    let mut etcd_saved: Option<EtcdBackup> = None;
    for p in &planned {
        let component = p.component;
        if p.unchanged() {
            println!(
                "[upgrade/services] Current and new units of {component} are equal, skipping upgrade"
            );
            continue;
        }
        if component == "etcd" {
            let live = services::as_pod(ctx.fx.as_ref(), "etcd")?
                .ok_or_else(|| Error::msg("etcd's environment file is gone"))?;
            etcd_saved = Some(etcd_backup::save(ctx, &pod_yaml(&live)?)?);
        }
        crate::commands::kill_point(ctx.command(), &format!("control-plane:{component}"));
        let backup = backup_dir(ctx)?;
        if let Err(detail) = swap(ctx, p, &backup, &mut swapped, timeout)? {
            return Err(roll_back(
                ctx,
                &swapped,
                &backup,
                component,
                &detail,
                etcd_saved.as_ref(),
            ));
        }
        if !ctx.opts.dry_run {
            println!("[upgrade/services] Component {component:?} upgraded successfully!");
        }
    }
    if ctx.opts.certificate_renewal {
        certs::renew_admin(ctx)?;
    }
    ctx.fx.sync()?;
    record_version(ctx, &version.to_string())?;
    match &ctx.backup_dir {
        Some(d) => println!(
            "[upgrade/control-plane] The previous units and flags are kept in {:?}",
            d.display()
        ),
        None => println!("[upgrade/control-plane] Every service is already up to date"),
    }
    Ok(())
}

/// One component's swap: its certificates renewed, the live unit and env file kept in
/// `backup`, the new ones written (`swapped` then holds it), the service restarted and its
/// health waited for. `Ok(Err(detail))` is a failure to roll back from; `Err` one writing the
/// backup, before anything of this component changed.
fn swap<'a>(
    ctx: &mut UpgradeContext,
    p: &'a Planned,
    backup: &Path,
    swapped: &mut Vec<&'a Planned>,
    timeout: std::time::Duration,
) -> Result<std::result::Result<(), String>> {
    let component = p.component;
    if ctx.opts.certificate_renewal
        && let Err(e) = certs::renew_for(ctx, component)
    {
        return Ok(Err(format!("renewing its certificates failed: {e}")));
    }
    for (file, bytes) in [
        (service::unit_name(component), &p.old_unit),
        (format!("{component}.env"), &p.old_env),
    ] {
        ctx.fx.write_file(
            &backup.join(file),
            Content::Plain(bytes.clone()),
            BACKUP_MODE,
        )?;
    }
    println!(
        "[upgrade/services] Moving the new unit and flags of {component} into place ({} → {}), the previous ones backed up to {:?}",
        service::exec_program(&String::from_utf8_lossy(&p.old_unit)).unwrap_or_default(),
        p.files.binary,
        backup.display()
    );
    services::write(ctx.fx.as_ref(), &p.files)?;
    swapped.push(p);
    if let Err(e) = services::start(ctx.fx.as_ref(), component) {
        return Ok(Err(format!("restarting it failed: {e}")));
    }
    crate::commands::kill_point(ctx.command(), &format!("control-plane:{component}-swapped"));
    println!(
        "[upgrade/services] Waiting for {component} to become healthy (this can take up to {})",
        go_duration(timeout)
    );
    Ok(wait_swapped(
        ctx,
        &format!("{component}'s health endpoint"),
        timeout,
        |ctx| wait_healthy(ctx, p, timeout),
    ))
}

/// Records on this node's Node object the version its services now run (what mirror Pods show
/// for static Pods): `upgrade` of the last control-plane node upgrades the addons only once
/// every control-plane node says the target.
fn record_version(ctx: &mut UpgradeContext, version: &str) -> Result<()> {
    let node = ctx.view()?.node_name.clone();
    let patch = serde_json::json!({"metadata": {"annotations": {service::NODE_VERSION_ANNOTATION: version}}});
    ctx.block_on(|c| async move {
        let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(c);
        let (params, patch) = (
            kube::api::PatchParams::default(),
            kube::api::Patch::Merge(&patch),
        );
        crate::apiclient::retry(
            &format!("annotate node {node} with its control-plane version"),
            5,
            || nodes.patch(&node, &params, &patch),
        )
        .await?;
        Ok(())
    })
}

/// For `upgrade diff`: each unit and env file `upgrade apply` would write, as (host path,
/// live text, new text).
pub fn planned_files(ctx: &mut UpgradeContext) -> Result<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    for p in plan(ctx)? {
        out.push((
            service::unit_path(p.component),
            String::from_utf8_lossy(&p.old_unit).into_owned(),
            p.files.unit,
        ));
        out.push((
            service::env_path(p.component),
            String::from_utf8_lossy(&p.old_env).into_owned(),
            p.files.env,
        ));
    }
    Ok(out)
}

/// Every component's new files, built before anything changes.
fn plan(ctx: &mut UpgradeContext) -> Result<Vec<Planned>> {
    let cfg = ctx.target()?;
    let mut components: Vec<&'static str> = Vec::new();
    if cfg.local_etcd().is_some() && ctx.opts.etcd_upgrade {
        components.push("etcd");
    }
    components.extend([
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ]);
    let pods: Vec<(&'static str, Pod)> = ctx.with_init(|ictx| {
        components
            .iter()
            .map(|c| {
                let pod = match (*c, ictx.cfg.local_etcd().cloned()) {
                    ("etcd", Some(local)) => etcd::local_pod(ictx, &local)?,
                    _ => control_plane::render_pod(ictx, c)?,
                };
                Ok((*c, pod))
            })
            .collect::<Result<_>>()
    })?;
    let fx = ctx.fx.as_ref();
    pods.into_iter()
        .map(|(component, pod)| {
            let unit_path = service::unit_path(component);
            let old_unit = fx.read(Path::new(&unit_path))?.ok_or_else(|| {
                Error::with_hint(
                    format!("the systemd unit {unit_path} does not exist"),
                    format!("re-create it at the current version with `kubeadm init phase {} --control-plane-mode systemd`", if component == "etcd" { "etcd local" } else { "control-plane all" }),
                )
            })?;
            let old_env = fx
                .read(Path::new(&service::env_path(component)))?
                .unwrap_or_default();
            let program = service::exec_program(&String::from_utf8_lossy(&old_unit))
                .ok_or_else(|| Error::msg(format!("{unit_path} has no ExecStart= line")))?;
            let dir = binary_dir_at(&program, &services::binary_version(&pod));
            let files = service::component_service(&pod, &dir)?;
            Ok(Planned {
                component,
                pod,
                files,
                old_unit,
                old_env,
            })
        })
        .collect()
}

/// The new binaries exist and report the target's versions, before anything is swapped; a
/// dry run reports what would fail.
fn check_binaries(ctx: &UpgradeContext, planned: &[Planned]) -> Result<()> {
    let checks: Vec<Box<dyn Check>> = planned
        .iter()
        .filter(|p| !p.unchanged())
        .map(|p| {
            Box::new(ServiceBinary {
                component: p.component.to_string(),
                path: p.files.binary.clone(),
                version: services::binary_version(&p.pod),
            }) as Box<dyn Check>
        })
        .collect();
    match kubeadm_preflight::run_more_checks(
        ctx.fx.as_ref(),
        &checks,
        &ctx.opts.ignore_preflight_errors,
    ) {
        Ok(_) => Ok(()),
        Err(e) if ctx.opts.dry_run => {
            ctx.fx.note(&format!("would fail: {e}"));
            Ok(())
        }
        Err(e) => Err(Error::with_hint(
            format!("{e}; no service was changed"),
            e.hint()
                .unwrap_or_else(|| "install the target's binaries first".into()),
        )),
    }
}

/// The component's health endpoint answers within `timeout` (etcd: its client URLs).
fn wait_healthy(
    ctx: &mut UpgradeContext,
    p: &Planned,
    timeout: std::time::Duration,
) -> std::result::Result<(), String> {
    if p.component == "etcd" {
        let pki = ctx
            .target()
            .map(|c| c.cluster.certificates_dir)
            .map_err(|e| e.to_string())?;
        let yaml = pod_yaml(&p.pod).map_err(|e| e.to_string())?;
        return etcd_backup::wait_healthy(ctx, Path::new(&pki), &yaml, timeout);
    }
    let advertise = ctx
        .target()
        .map(|c| c.init.local_api_endpoint.advertise_address.clone())
        .map_err(|e| e.to_string())?;
    let endpoints =
        waiter::control_plane_endpoints(&[(p.component.to_string(), p.pod.clone())], &advertise)
            .or_else(|_| {
                // One component alone: the others' absence is not this one's problem.
                let mut pods = vec![(p.component.to_string(), p.pod.clone())];
                for c in [
                    "kube-apiserver",
                    "kube-controller-manager",
                    "kube-scheduler",
                ] {
                    if c != p.component
                        && let Ok(Some(pod)) = services::as_pod(ctx.fx.as_ref(), c)
                    {
                        pods.push((c.to_string(), pod));
                    }
                }
                waiter::control_plane_endpoints(&pods, &advertise)
            })?;
    let Some(ep) = endpoints.into_iter().find(|e| e.name == p.component) else {
        return Err(format!("no health endpoint known for {}", p.component));
    };
    let mut opts = waiter::WaitOptions::new("upgrade/services");
    opts.progress = waiter::Progress::Plain;
    waiter::wait_for_blocking(std::slice::from_ref(&ep), timeout, &opts)
        .map(|_| ())
        .map_err(|e| {
            format!(
                "{} did not become healthy within {}: {e}",
                p.component,
                go_duration(timeout)
            )
        })
}

/// Writes back every swapped unit and env file (newest first) and restarts those services;
/// when etcd was among them, waits for the previous etcd and, if it does not come back, names
/// the snapshot to restore. Builds the error to report.
fn roll_back(
    ctx: &UpgradeContext,
    swapped: &[&Planned],
    backup: &Path,
    failed: &str,
    detail: &str,
    etcd_saved: Option<&EtcdBackup>,
) -> Error {
    let fx = ctx.fx.as_ref();
    let mut restored = Vec::new();
    let mut not_restored = Vec::new();
    for p in swapped.iter().rev() {
        let back = fx
            .write_file(
                Path::new(&service::env_path(p.component)),
                Content::Plain(p.old_env.clone()),
                BACKUP_MODE,
            )
            .and_then(|()| {
                fx.write_file(
                    Path::new(&service::unit_path(p.component)),
                    Content::Plain(p.old_unit.clone()),
                    0o644,
                )
            })
            .map_err(Error::from)
            .and_then(|()| services::start(fx, p.component));
        match back {
            Ok(()) => restored.push(p.component),
            Err(e) => not_restored.push(format!("{} ({e})", p.component)),
        }
    }
    println!(
        "[upgrade/services] Rolled back the units and flags of [{}] to the versions kept in {:?}",
        restored.join(" "),
        backup.display()
    );
    let mut message = format!(
        "upgrading {failed} failed: {detail}; the previous units and flags of [{}] were restored from {}",
        restored.join(" "),
        backup.display()
    );
    if !not_restored.is_empty() {
        message.push_str(&format!(
            "; COULD NOT restore [{}]: copy them back from that folder by hand and run `systemctl daemon-reload`",
            not_restored.join(", ")
        ));
    }
    if let Some(saved) = etcd_saved
        && restored.contains(&"etcd")
    {
        // The restored env file: the previous etcd's URLs.
        let old = services::as_pod(fx, "etcd")
            .ok()
            .flatten()
            .and_then(|pod| pod_yaml(&pod).ok())
            .unwrap_or_default();
        match etcd_backup::wait_healthy(ctx, &saved.pki, &old, ctx.opts.upgrade_manifests_timeout)
        {
            Ok(()) => message.push_str("; the previous etcd is available again"),
            Err(e) => message.push_str(&format!(
                "; the previous etcd did not come back ({e}): restore its data with `kubeadm etcd snapshot restore {}` after `systemctl stop etcd`",
                saved.snapshot.display()
            )),
        }
    }
    Error::with_hint(
        message,
        format!(
            "the previous services run again; the backups stay in {}. Look at why the new {failed} did not come up: `journalctl -u {failed}`",
            backup.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_segment_of_the_binary_dir_moves_to_the_target() {
        assert_eq!(
            binary_dir_at("/opt/kubernetes/v1.31.2/bin/kube-apiserver", "v1.32.0"),
            "/opt/kubernetes/v1.32.0/bin"
        );
        assert_eq!(
            binary_dir_at("/opt/etcd-v3.5.15/etcd", "v3.5.16"),
            "/opt/etcd-v3.5.15"
        );
        assert_eq!(
            binary_dir_at("/usr/local/bin/kube-scheduler", "v1.32.0"),
            "/usr/local/bin"
        );
        assert_eq!(
            binary_dir_at("/opt/v3.5.15/etcd", "v3.5.16"),
            "/opt/v3.5.16"
        );
    }
}
