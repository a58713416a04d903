//! etcd's part of the control-plane phase: before its manifest changes, a consistent snapshot
//! through etcd's own API (`kubeadm etcd snapshot save`'s code: streamed, checked against the
//! SHA-256 etcd appends, its checksum, revision and key count recorded next to it) instead of
//! upstream's copy of a live data directory; and, when the previous etcd does not come back
//! after a failed swap, the way back: its data restored from that snapshot.
//!
//! As upstream, a data restore happens only when the previous etcd, its manifest restored, does
//! not turn healthy within `timeouts.upgradeManifests`: if it serves again its data is sound,
//! and restoring would only throw away what was written since the snapshot.

use kubeadm_errors::Hint;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kubeadm_etcd::backup;
use kubeadm_etcd::restore::{self, RestoreOptions};

use super::UpgradeContext;
use super::control_plane::{private_tmp_dir, timestamp};
use crate::commands::etcd::connect_to;
use crate::error::{Error, Result};
use crate::restart;
use crate::waiter::go_duration;

/// How often etcd's health is asked while waiting.
const POLL: Duration = Duration::from_millis(200);
/// How long one health call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The snapshot taken before etcd's manifest changed.
#[derive(Debug, Clone)]
pub struct EtcdBackup {
    /// The snapshot file (host path); its record is next to it.
    pub snapshot: PathBuf,
    /// How many members the cluster had (a restore makes a one-member cluster).
    pub members: usize,
    /// The PKI directory (etcd CA and client certificate).
    pub pki: PathBuf,
}

/// How long the health check before the snapshot waits for an etcd that does not answer yet.
const HEALTH_GRACE: Duration = Duration::from_secs(10);

/// The local member's client URLs, from the text of its manifest.
fn client_urls(manifest: &str) -> Result<Vec<String>> {
    let (member, _) = restore::local_member(Path::new(restore::MANIFEST), manifest)?;
    if member.client_urls.is_empty() {
        return Err(Error::with_hint(
            format!(
                "the etcd manifest {} names no --advertise-client-urls",
                restore::MANIFEST
            ),
            "re-create it with `kubeadm init phase etcd local` at the current version",
        ));
    }
    Ok(member.client_urls)
}

/// Checks that the local etcd is healthy, counts its members and saves a snapshot into
/// `/etc/kubernetes/tmp/kubeadm-backup-etcd-<timestamp>/` (0700, the file 0600 with its
/// record). `live` is the manifest etcd runs from now. In a dry run the writes are only shown.
pub fn save(ctx: &mut UpgradeContext, live: &str) -> Result<EtcdBackup> {
    let pki = PathBuf::from(ctx.target()?.cluster.certificates_dir);
    let urls = client_urls(live)?;
    let fx = ctx.fx.clone();
    let etcd = connect_to(fx.as_ref(), urls, &pki, Duration::from_secs(30))?;
    let mut members = 1;
    if !fx.is_dry_run() {
        // A member that is (re)starting, as right after its kubelet started it, gets a few
        // seconds before the upgrade refuses.
        let mut last = None;
        kubeadm_effects::poll::poll_until(HEALTH_GRACE, &mut || match etcd.client.health() {
            Ok(()) => {
                last = None;
                true
            }
            Err(e) => {
                last = Some(e);
                false
            }
        });
        if let Some(e) = last {
            return Err(Error::with_hint(
                format!(
                    "etcd is not healthy after {}, not upgrading it: {}",
                    go_duration(HEALTH_GRACE),
                    etcd.about.err(e)
                ),
                "the upgrade changed nothing; bring etcd back to health first (`kubeadm etcd member list`)",
            ));
        }
        members = etcd
            .client
            .member_list()
            .map_err(|e| etcd.about.err(e))?
            .len();
    }
    let dir = private_tmp_dir(ctx, &format!("kubeadm-backup-etcd-{}", timestamp()))?;
    let now = jiff::Timestamp::now().as_second();
    let path = dir.join(backup::default_name(now));
    let record = backup::save(fx.as_ref(), &etcd.client, &path, now).map_err(|e| match e {
        backup::BackupError::Etcd(inner) => etcd.about.err(inner),
        other => Error::from(other),
    })?;
    match record {
        Some(r) => println!(
            "[upgrade/etcd] Saved a snapshot of etcd to {:?}: revision {}, {} keys, {} bytes, sha256 {}",
            path.display(),
            r.revision,
            r.total_keys,
            r.size,
            r.sha256
        ),
        None => println!(
            "[upgrade/etcd] Would save a snapshot of etcd to {:?}",
            path.display()
        ),
    }
    Ok(EtcdBackup {
        snapshot: path,
        members,
        pki,
    })
}

/// Waits within `within` for etcd at the client URLs of `manifest` to answer healthy; the error
/// says what it answered last.
pub fn wait_healthy(
    ctx: &UpgradeContext,
    pki: &Path,
    manifest: &str,
    within: Duration,
) -> Result<(), String> {
    let urls = client_urls(manifest).map_err(|e| e.to_string())?;
    let mut last = String::new();
    let healthy = kubeadm_effects::poll::poll_until_on(
        within,
        kubeadm_effects::poll::Schedule::every(POLL),
        &mut || {
            match connect_to(ctx.fx.as_ref(), urls.clone(), pki, CALL_TIMEOUT) {
                Ok(etcd) => match etcd.client.health() {
                    Ok(()) => return true,
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            false
        },
    );
    if healthy.is_some() {
        return Ok(());
    }
    // Whole seconds: `within` is what was left of a timeout (9.89s reads as 10s).
    let shown = Duration::from_secs_f64(within.as_secs_f64().round());
    Err(format!(
        "etcd at {} did not become healthy within {}: {last}",
        urls.join(","),
        go_duration(shown)
    ))
}

/// What became of etcd after its manifest was put back.
#[derive(Debug)]
pub enum Recovery {
    /// The previous etcd serves again with its own data.
    CameBack,
    /// It did not; its data was restored from the snapshot and it serves again.
    Restored {
        /// The restored revision.
        revision: i64,
        /// Where the data directory as it was is kept.
        kept: Option<PathBuf>,
    },
    /// It did not, and the data could not (or must not) be restored: why, and what to do.
    NotRestored(String),
}

impl Recovery {
    /// One sentence for the upgrade's error message.
    pub fn describe(&self, backup: &EtcdBackup) -> String {
        let snap = backup.snapshot.display();
        match self {
            Recovery::CameBack => format!(
                "the previous etcd serves again with its own data (the snapshot {snap} was not needed and is kept)"
            ),
            Recovery::Restored { revision, kept } => format!(
                "the previous etcd did not come back, so its data was restored from the snapshot {snap} (revision {revision}){}",
                kept.as_ref()
                    .map(|k| format!("; the data directory as it was is kept in {}", k.display()))
                    .unwrap_or_default()
            ),
            Recovery::NotRestored(why) => format!(
                "the previous etcd did not come back and its data was NOT restored: {why}; the snapshot is {snap}"
            ),
        }
    }
}

/// After etcd's previous manifest (`old`) was written back: waits for the previous etcd; when it
/// does not turn healthy within `within`, stops it (parks its manifest), restores its data from
/// the snapshot with `etcdutl` (the previous data directory kept under a new name), puts the
/// manifest back byte for byte and waits again. A cluster of several members is not restored
/// (a restore makes a new one-member cluster): the reason says what to do instead.
pub fn recover(ctx: &UpgradeContext, backup: &EtcdBackup, old: &str, within: Duration) -> Recovery {
    println!("[upgrade/etcd] Waiting for the previous etcd to become available");
    let Err(down) = wait_healthy(ctx, &backup.pki, old, within) else {
        println!("[upgrade/etcd] The previous etcd is available again");
        return Recovery::CameBack;
    };
    println!("[upgrade/etcd] The previous etcd did not come back: {down}");
    if backup.members > 1 {
        return Recovery::NotRestored(format!(
            "{down}; the cluster has {} members and a snapshot restore would make this one a new one-member cluster: remove this member (`kubeadm etcd member remove`) and join the node again, or restore the whole cluster from the snapshot (`kubeadm etcd snapshot restore`)",
            backup.members
        ));
    }
    println!(
        "[upgrade/etcd] Rolling back etcd data from {:?}",
        backup.snapshot.display()
    );
    match restore_data(ctx, backup, old, within) {
        Ok(done) => match wait_healthy(ctx, &backup.pki, old, within) {
            Ok(()) => {
                println!("[upgrade/etcd] etcd data rollback successful, etcd is available again");
                done
            }
            Err(e) => Recovery::NotRestored(format!(
                "the data was restored from the snapshot, but etcd did not become healthy afterwards: {e}"
            )),
        },
        Err(e) => Recovery::NotRestored(format!(
            "{down}; restoring the snapshot failed: {e}{}; restore it by hand with `kubeadm etcd snapshot restore {}`",
            e.hint().map(|h| format!(" ({h})")).unwrap_or_default(),
            backup.snapshot.display()
        )),
    }
}

/// Parks etcd's manifest, waits for the member to stop, restores the snapshot into its data
/// directory, and moves the manifest back (also when the restore failed).
fn restore_data(
    ctx: &UpgradeContext,
    backup: &EtcdBackup,
    old: &str,
    within: Duration,
) -> Result<Recovery> {
    let fx = ctx.fx.as_ref();
    let verified = backup::status(fx, &backup.snapshot)?;
    let urls = client_urls(old)?;
    let now = jiff::Timestamp::now().as_second();
    let parked = restart::park(fx, &["etcd"], &format!("upgrade-restore-{now}"))?;
    if let Err(url) = restore::wait_stopped(&urls, within) {
        parked.restore(fx)?;
        return Err(Error::with_hint(
            format!(
                "etcd still answers at {url} {} after its manifest was moved out",
                go_duration(within)
            ),
            "check that the kubelet runs (it stops static Pods whose manifests are gone)",
        ));
    }
    let opts = RestoreOptions {
        snapshot: backup.snapshot.clone(),
        verified,
        manifest_path: PathBuf::from(restore::MANIFEST),
        manifest: old.to_string(),
        // The previous manifest starts the restored member as it is (one member).
        manifest_out: None,
        etcdutl: ctx.opts.etcdutl.clone(),
        now,
    };
    let restored = restore::restore(fx, &opts);
    parked.restore(fx)?;
    let done = restored?;
    if let Some(kept) = &done.kept {
        println!(
            "[upgrade/etcd] Kept the data directory as it was in {:?}",
            kept.display()
        );
    }
    Ok(Recovery::Restored {
        revision: done.revision,
        kept: done.kept,
    })
}
