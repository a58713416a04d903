//! `upgrade apply|node phase control-plane`: the static Pods, one component at a time in
//! upstream's order (etcd, kube-apiserver, kube-controller-manager, kube-scheduler).
//!
//! Every new manifest is rendered (patches applied) before the first one is swapped, so a bad
//! patch or configuration changes nothing. Then, per component: skip when the new manifest
//! equals the live one; keep the live one under
//! `/etc/kubernetes/tmp/kubeadm-backup-manifests-<timestamp>/` (0700, files 0600); write the new
//! one; wait, within `timeouts.upgradeManifests`, for the kubelet to restart the static Pod
//! (its mirror Pod's `kubernetes.io/config.hash` changes) and for the component's own health
//! endpoint; on any failure write back, byte for byte, every manifest swapped so far, and
//! fail naming the component and the backup folder. Before etcd's manifest changes, etcd is
//! saved as a snapshot (`etcd_backup`); when the previous etcd does not come back after a
//! rollback, its data is restored from it.

use kubeadm_errors::Hint;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::Api;
use kubeadm_effects::Content;
use kubeadm_render::staticpod::{self, MANIFESTS_DIR};

use super::etcd_backup::{self, EtcdBackup};
use super::{UpgradeContext, certs, cluster, leaf};
use crate::error::{Error, Result};
use crate::phases::init::{control_plane, etcd};
use crate::waiter::{self, go_duration};

/// Where upgrade keeps its backups (upstream's temp folder).
pub const TMP_DIR: &str = "/etc/kubernetes/tmp";
/// The annotation the kubelet sets on a mirror Pod: a hash of the static Pod it runs.
const CONFIG_HASH: &str = "kubernetes.io/config.hash";
/// Mode of manifests and their backups.
const MANIFEST_MODE: u32 = 0o600;
/// How often the mirror Pod is looked at.
const POLL: Duration = Duration::from_millis(100);

/// `control-plane`.
pub fn phase() -> kubeadm_workflow::Phase<UpgradeContext, Error> {
    leaf("control-plane", "Upgrade the control plane", run)
}

/// A manifest replaced by this run, with the bytes it had.
struct Swapped {
    component: &'static str,
    old: Vec<u8>,
}

/// Upstream's timestamp of backup folders (`2006-01-02-15-04-05`, UTC).
pub fn timestamp() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%d-%H-%M-%S")
        .to_string()
}

/// Creates `/etc/kubernetes/tmp/<name>` (0700, and its parent 0700) and returns it.
pub fn private_tmp_dir(ctx: &UpgradeContext, name: &str) -> Result<PathBuf> {
    let tmp = Path::new(TMP_DIR);
    if !ctx.fx.exists(tmp) {
        ctx.fx.create_dir_all(tmp, 0o700)?;
    }
    let dir = tmp.join(name);
    ctx.fx.create_dir_all(&dir, 0o700)?;
    Ok(dir)
}

/// This run's timestamped backup folder, made on first use (shared by every component, and by
/// the static Pod and the systemd swaps).
pub(super) fn backup_dir(ctx: &mut UpgradeContext) -> Result<PathBuf> {
    if let Some(d) = &ctx.backup_dir {
        return Ok(d.clone());
    }
    let d = private_tmp_dir(ctx, &format!("kubeadm-backup-manifests-{}", timestamp()))?;
    ctx.backup_dir = Some(d.clone());
    Ok(d)
}

/// Waits for a swapped component through the effects layer's wait (a dry run says what it
/// would wait for and checks nothing) and records the time spent waiting.
pub(super) fn wait_swapped(
    ctx: &mut UpgradeContext,
    what: &str,
    timeout: Duration,
    mut check: impl FnMut(&mut UpgradeContext) -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    let waiting = Instant::now();
    let fx = ctx.fx.clone();
    let mut outcome = Ok(());
    fx.wait_until(what, timeout, &mut || {
        outcome = check(ctx);
        true
    });
    waiter::record_wait(waiting.elapsed());
    outcome
}

/// The components this node upgrades, in order, with their new manifests.
pub fn render_all(ctx: &mut UpgradeContext) -> Result<Vec<(&'static str, String)>> {
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
    ctx.with_init(|ictx| {
        components
            .iter()
            .map(|c| {
                let yaml = match (*c, ictx.cfg.local_etcd().cloned()) {
                    ("etcd", Some(local)) => etcd::render_local(ictx, &local)?,
                    _ => control_plane::render_component(ictx, c)?,
                };
                Ok((*c, yaml))
            })
            .collect()
    })
}

fn run(ctx: &mut UpgradeContext) -> Result<()> {
    // controlPlaneMode: systemd: the same Pods, swapped as units and env files.
    if crate::services::installed(ctx.fx.as_ref()) {
        return super::services::run(ctx);
    }
    if cluster::manifest(ctx.fx.as_ref(), "kube-apiserver").is_none() {
        println!(
            "[upgrade/control-plane] Skipping phase: this node has no kube-apiserver manifest in {MANIFESTS_DIR:?} (not a control-plane node)"
        );
        return Ok(());
    }
    let version = ctx.target_version()?;
    println!(
        "[upgrade/control-plane] Upgrading your static Pod-hosted control plane to version \"{version}\"..."
    );
    let rendered = render_all(ctx)?;
    let timeout = ctx.opts.upgrade_manifests_timeout;
    let node = ctx.view()?.node_name.clone();
    let mut swapped: Vec<Swapped> = Vec::new();
    let mut etcd_saved: Option<EtcdBackup> = None;
    for (component, new) in rendered {
        let path = staticpod::manifest_path(component);
        let path = Path::new(&path);
        let Some(old) = ctx.fx.read(path)? else {
            return Err(Error::with_hint(
                format!("the static Pod manifest {} does not exist", path.display()),
                "restore it from a backup under /etc/kubernetes/tmp, or re-create it with `kubeadm init phase control-plane` / `kubeadm init phase etcd local` at the current version",
            ));
        };
        if old == new.as_bytes() {
            println!(
                "[upgrade/staticpods] Current and new manifests of {component} are equal, skipping upgrade"
            );
            continue;
        }
        if component == "etcd" {
            // Health, membership and a snapshot first: an unhealthy etcd stops here, unchanged.
            etcd_saved = Some(etcd_backup::save(ctx, &String::from_utf8_lossy(&old))?);
        }
        crate::commands::kill_point(ctx.command(), &format!("control-plane:{component}"));
        let backup = backup_dir(ctx)?;
        if ctx.opts.certificate_renewal
            && let Err(e) = certs::renew_for(ctx, component)
        {
            let detail = format!("renewing its certificates failed: {e}");
            return Err(if swapped.is_empty() {
                Error::with_hint(
                    format!("upgrading {component} failed: {detail}; no manifest was changed"),
                    e.hint().unwrap_or_else(|| {
                        "check the CA files with `kubeadm certs check-expiration`".into()
                    }),
                )
            } else {
                roll_back(
                    ctx,
                    &swapped,
                    &backup,
                    component,
                    &detail,
                    etcd_saved.as_ref(),
                )
            });
        }
        let backup_file = backup.join(format!("{component}.yaml"));
        ctx.fx
            .write_file(&backup_file, Content::Plain(old.clone()), MANIFEST_MODE)?;
        let before = if ctx.opts.dry_run {
            None
        } else {
            mirror_hash(ctx, component, &node)
        };
        println!(
            "[upgrade/staticpods] Moving new manifest to {:?} and backing up old manifest to {:?}",
            path.display(),
            backup_file.display()
        );
        ctx.fx.write_file(
            path,
            Content::Plain(new.clone().into_bytes()),
            MANIFEST_MODE,
        )?;
        swapped.push(Swapped { component, old });
        // The riskiest moment to die: the new manifest is in place, nobody waits for it.
        crate::commands::kill_point(ctx.command(), &format!("control-plane:{component}-swapped"));
        println!(
            "[upgrade/staticpods] Waiting for the kubelet to restart the component (this can take up to {})",
            go_duration(timeout)
        );
        let restarted = wait_swapped(
            ctx,
            &format!("the kubelet to restart {component} and for its health endpoint"),
            timeout,
            |ctx| wait_restarted(ctx, component, &node, before.as_deref(), &new, timeout),
        );
        if let Err(detail) = restarted {
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
            println!("[upgrade/staticpods] Component {component:?} upgraded successfully!");
        }
    }
    if ctx.opts.certificate_renewal {
        certs::renew_admin(ctx)?;
    }
    ctx.fx.sync()?;
    match &ctx.backup_dir {
        Some(d) => println!(
            "[upgrade/control-plane] The previous manifests are kept in {:?}",
            d.display()
        ),
        None => println!("[upgrade/control-plane] Every static Pod manifest is already up to date"),
    }
    Ok(())
}

/// Writes every swapped manifest back (newest first); when etcd's was among them, waits for
/// the previous etcd and restores its data from the snapshot if it does not come back. Builds
/// the error to report.
fn roll_back(
    ctx: &UpgradeContext,
    swapped: &[Swapped],
    backup: &Path,
    failed: &str,
    detail: &str,
    etcd_saved: Option<&EtcdBackup>,
) -> Error {
    let mut restored = Vec::new();
    let mut not_restored = Vec::new();
    for s in swapped.iter().rev() {
        let path = staticpod::manifest_path(s.component);
        match ctx.fx.write_file(
            Path::new(&path),
            Content::Plain(s.old.clone()),
            MANIFEST_MODE,
        ) {
            Ok(()) => restored.push(s.component),
            Err(e) => not_restored.push(format!("{} ({e})", s.component)),
        }
    }
    let _ = ctx.fx.sync();
    println!(
        "[upgrade/staticpods] Rolled back the manifests of [{}] to the versions kept in {:?}",
        restored.join(" "),
        backup.display()
    );
    let mut message = format!(
        "upgrading {failed} failed: {detail}; the previous manifests of [{}] were restored from {}",
        restored.join(" "),
        backup.display()
    );
    if !not_restored.is_empty() {
        message.push_str(&format!(
            "; COULD NOT restore [{}]: copy them back from that folder by hand",
            not_restored.join(", ")
        ));
    }
    let etcd_old = swapped
        .iter()
        .find(|s| s.component == "etcd" && restored.contains(&"etcd"));
    if let (Some(saved), Some(old)) = (etcd_saved, etcd_old) {
        let recovery = etcd_backup::recover(
            ctx,
            saved,
            &String::from_utf8_lossy(&old.old),
            ctx.opts.upgrade_manifests_timeout,
        );
        message.push_str("; ");
        message.push_str(&recovery.describe(saved));
    }
    Error::with_hint(
        message,
        format!(
            "the kubelet restarts the previous static Pods from the restored manifests; the backups stay in {}. Look at why the new {failed} did not come up: {}",
            backup.display(),
            waiter::troubleshooting(kubeadm_api::defaults::DEFAULT_CRI_SOCKET)
        ),
    )
}

/// The mirror Pod's config hash of `component` on `node` (`None` when there is none yet).
fn mirror_hash(ctx: &mut UpgradeContext, component: &str, node: &str) -> Option<String> {
    let name = format!("{component}-{node}");
    ctx.block_on(|c| async move { Ok(get_hash(&c, &name).await) })
        .ok()
        .flatten()
}

async fn get_hash(client: &Client, name: &str) -> Option<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let pod = pods.get_opt(name).await.ok()??;
    pod.metadata.annotations?.get(CONFIG_HASH).cloned()
}

/// Waits for the kubelet to run the new static Pod (hash changed), then for the component's
/// health endpoint, all within `timeout`. The error says what did not happen.
fn wait_restarted(
    ctx: &mut UpgradeContext,
    component: &'static str,
    node: &str,
    before: Option<&str>,
    new_manifest: &str,
    timeout: Duration,
) -> Result<(), String> {
    let start = Instant::now();
    let deadline = start + timeout;
    let name = format!("{component}-{node}");
    let before = before.map(str::to_string);
    let hash_changed = ctx
        .block_on(|c| async move {
            let changed = || {
                let (c, name, before) = (c.clone(), name.clone(), before.clone());
                async move {
                    let now = get_hash(&c, &name).await;
                    now.is_some() && now != before
                }
            };
            let schedule = kubeadm_effects::poll::Schedule::every(POLL);
            Ok(kubeadm_effects::poll::poll_until_async(
                timeout,
                schedule,
                changed,
                tokio::time::sleep,
            )
            .await
            .is_some())
        })
        .map_err(|e| e.to_string())?;
    if !hash_changed {
        return Err(format!(
            "static Pod hash for component {component} on Node {node} did not change after {}",
            go_duration(timeout)
        ));
    }
    println!(
        "[upgrade/staticpods] The kubelet restarted {component} after {}",
        go_duration(start.elapsed())
    );
    let left = deadline.saturating_duration_since(Instant::now());
    if component == "etcd" {
        let pki = ctx
            .target()
            .map(|c| c.cluster.certificates_dir)
            .map_err(|e| e.to_string())?;
        return etcd_backup::wait_healthy(ctx, Path::new(&pki), new_manifest, left);
    }
    let advertise = ctx
        .target()
        .map(|c| c.init.local_api_endpoint.advertise_address.clone())
        .map_err(|e| e.to_string())?;
    let mut pods = Vec::new();
    for c in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        let text = if c == component {
            Some(new_manifest.to_string())
        } else {
            ctx.fx
                .read_to_string(Path::new(&staticpod::manifest_path(c)))
                .ok()
                .flatten()
        };
        if let Some(pod) = text.and_then(|t| serde_saphyr::from_str::<Pod>(&t).ok()) {
            pods.push((c.to_string(), pod));
        }
    }
    let endpoints = waiter::control_plane_endpoints(&pods, &advertise)?;
    let Some(ep) = endpoints.into_iter().find(|e| e.name == component) else {
        return Err(format!("no health endpoint known for {component}"));
    };
    let mut opts = waiter::WaitOptions::new("upgrade/staticpods");
    opts.progress = waiter::Progress::Plain;
    waiter::wait_for_blocking(std::slice::from_ref(&ep), left, &opts)
        .map(|_| ())
        .map_err(|e| {
            format!(
                "{component} did not become healthy within {}: {e}",
                go_duration(timeout)
            )
        })
}
