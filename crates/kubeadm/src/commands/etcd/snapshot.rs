//! `kubeadm etcd snapshot save|status|restore|schedule`.

use std::path::Path;
use std::time::{Duration, Instant};

use kubeadm_etcd::backup::{self, BACKUP_DIR};
use kubeadm_etcd::restore::{self, RestoreOptions};
use kubeadm_render::systemd::TimerJob;
use serde_json::json;

use super::{
    Output, RestoreArgs, SaveArgs, ScheduleArgs, StatusArgs, bundle, connect, duration_flag,
    host_path,
};
use crate::commands::init::effects;
use crate::error::{Error, Result};
use crate::{restart, timers};

/// The systemd unit name (without suffix) of scheduled snapshots.
pub const SNAPSHOT_UNIT: &str = "kubeadm-etcd-snapshot";

/// `kubeadm etcd snapshot save [FILE]`.
pub fn save(root: &Path, args: SaveArgs) -> Result<()> {
    let fx = effects(root, args.dry_run);
    let fx = fx.as_ref();
    let now = kubeadm_api::dates::now_unix();
    let path = match &args.file {
        Some(p) => host_path(p)?,
        None => Path::new(BACKUP_DIR).join(backup::default_name(now)),
    };
    // The key is read before anything is asked of etcd: a bad key file stops here.
    let key = args
        .encryption_key_file
        .as_deref()
        .map(bundle::read_key)
        .transpose()?;
    let etcd = connect(fx, &args.connection)?;
    let start = Instant::now();
    let record = backup::save(fx, &etcd.client, &path, now).map_err(|e| match e {
        backup::BackupError::Etcd(inner) => etcd.about.err(inner),
        other => Error::from(other),
    })?;
    if let Some(r) = &record {
        let secs = start.elapsed().as_secs_f64();
        println!(
            "[etcd] Saved snapshot {} from {}: revision {}, {} keys, {} bytes in {secs:.2}s ({:.1} MB/s), sha256 {}",
            path.display(),
            r.endpoint,
            r.revision,
            r.total_keys,
            r.size,
            r.size as f64 / 1e6 / secs.max(1e-9),
            r.sha256
        );
    }
    if let Some(key) = &key {
        let out = bundle::write(fx, &path, &args.connection.cert_dir, key)?;
        println!("[etcd] Wrote the encrypted bundle {}", out.display());
    }
    if let Some(keep) = args.keep {
        let dir = path.parent().unwrap_or(Path::new("/"));
        for p in backup::prune(fx, dir, keep)? {
            println!("[etcd] Removed old snapshot {}", p.display());
        }
    }
    Ok(())
}

/// `kubeadm etcd snapshot status FILE`.
pub fn status(root: &Path, args: StatusArgs) -> Result<()> {
    let fx = effects(root, true);
    let path = host_path(&args.file)?;
    let s = backup::status(fx.as_ref(), &path)?;
    let c = &s.checked;
    let opened = match &args.encryption_key_file {
        Some(k) => Some(bundle::open(fx.as_ref(), &path, &bundle::read_key(k)?)?),
        None => None,
    };
    let bundle_files: Option<Vec<&String>> = opened.as_ref().map(|b| b.files.keys().collect());
    let bundle_config = opened.as_ref().map(|b| b.kubeadm_config.is_some());
    match args.output {
        Output::Json => {
            let doc = json!({
                "file": path.display().to_string(),
                "sha256": c.sha256,
                "size": c.size,
                "revision": c.db.revision,
                "totalKey": c.db.total_keys,
                "etcdHashVerified": c.embedded_hash,
                "recordVerified": s.record.is_some(),
                "createdAt": s.record.as_ref().map(|r| r.created_at.clone()),
                "bundleFiles": bundle_files,
                "bundleHasKubeadmConfig": bundle_config,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).map_err(|e| Error::msg(e.to_string()))?
            );
        }
        Output::Text => {
            println!("file:      {}", path.display());
            println!("revision:  {}", c.db.revision);
            println!("keys:      {}", c.db.total_keys);
            println!("size:      {} bytes", c.size);
            println!("sha256:    {}", c.sha256);
            println!(
                "checks:    {}; database pages read; {}",
                if c.embedded_hash {
                    "etcd's appended SHA-256 matches"
                } else {
                    "no SHA-256 appended by etcd (a copied data file?)"
                },
                match &s.record {
                    Some(r) => format!(
                        "record matches (taken {} from {})",
                        r.created_at, r.endpoint
                    ),
                    None => "no kubeadm record next to it".to_string(),
                }
            );
            if let Some(files) = &bundle_files {
                println!(
                    "bundle:    {} files{}",
                    files.len(),
                    if bundle_config == Some(true) {
                        " and kubeadm-config"
                    } else {
                        ", no kubeadm-config"
                    }
                );
                for f in files {
                    println!("           {f}");
                }
            }
        }
    }
    Ok(())
}

/// Waits until nothing answers at the member's client URLs any more.
fn wait_stopped(urls: &[String], within: Duration) -> Result<()> {
    restore::wait_stopped(urls, within).map_err(|url| {
        Error::with_hint(
            format!("etcd still answers at {url} {within:?} after its manifest was moved out"),
            "check that the kubelet runs (it stops static Pods whose manifests are gone), or stop the etcd container by hand; the manifest was put back",
        )
    })
}

/// `kubeadm etcd snapshot restore FILE`.
pub fn restore(root: &Path, args: RestoreArgs) -> Result<()> {
    let fx = effects(root, args.dry_run);
    let fx = fx.as_ref();
    let snapshot = host_path(&args.file)?;
    let manifest = host_path(&args.manifest)?;
    let stop_timeout = duration_flag("stop-timeout", &args.stop_timeout)?;
    let now = kubeadm_api::dates::now_unix();
    // Check the snapshot before anything changes: a corrupted one stops here.
    let status = backup::status(fx, &snapshot)?;
    println!(
        "[restore] Snapshot {} verified: revision {}, {} keys",
        snapshot.display(),
        status.checked.db.revision,
        status.checked.db.total_keys
    );
    let text = fx.read_to_string(&manifest)?.ok_or_else(|| {
        Error::with_hint(
            format!("the etcd manifest {} does not exist", manifest.display()),
            "run this on a control-plane node with stacked etcd; if you moved the manifest out, name it with --manifest",
        )
    })?;
    let (member, _) = restore::local_member(&manifest, &text)?;
    // A bundle is opened before anything stops: a wrong key changes nothing either.
    let opened = match &args.encryption_key_file {
        Some(k) => Some(bundle::open(fx, &snapshot, &bundle::read_key(k)?)?),
        None => None,
    };
    let out = Path::new(restore::MANIFEST).to_path_buf();
    // A manifest in the manifests directory means the kubelet runs etcd: stop it by parking it.
    let parked = if manifest == out {
        let tag = format!("before-restore-{now}");
        let parked = restart::park(fx, &["etcd"], &tag)?;
        if !fx.is_dry_run()
            && let Err(e) = wait_stopped(&member.client_urls, stop_timeout)
        {
            parked.restore(fx)?;
            return Err(e);
        }
        Some(parked)
    } else {
        None
    };
    if let Some(b) = &opened {
        for p in bundle::put_back(fx, b)? {
            println!("[restore] Put back {} from the bundle", p.display());
        }
        if let Some(cfg) = &b.kubeadm_config {
            let p = Path::new(restart::PARKING).join(format!("kubeadm-config-{now}.yaml"));
            fx.write_file(
                &p,
                kubeadm_effects::Content::Plain(cfg.clone().into_bytes()),
                0o600,
            )?;
            println!(
                "[restore] The bundle's ClusterConfiguration is in {} (for reference, or `kubeadm init --config` on a new node)",
                p.display()
            );
        }
    }
    let opts = RestoreOptions {
        snapshot,
        verified: status,
        manifest_path: manifest.clone(),
        manifest: text,
        manifest_out: Some(out.clone()),
        etcdutl: args.etcdutl.clone(),
        now,
    };
    match restore::restore(fx, &opts) {
        Ok(done) => {
            if let Some(kept) = &done.kept {
                println!(
                    "[restore] Kept the previous data directory as {}",
                    kept.display()
                );
            }
            if let Some(p) = parked.as_ref().and_then(|p| p.moves().first()) {
                println!("[restore] The previous manifest stays at {}", p.1.display());
            }
            println!(
                "[restore] Restored revision {} into {} as a new single-member cluster (member {} at {}, cluster token {}); wrote {}",
                done.revision,
                done.member.host_data_dir.display(),
                done.member.name,
                done.member.peer_url,
                done.token,
                out.display()
            );
            println!(
                "[restore] Other control-plane nodes must join again: on each, `kubeadm reset`, then `kubeadm join … --control-plane`"
            );
            Ok(())
        }
        Err(e) => {
            // Nothing was replaced: let the kubelet run the old member again.
            if let Some(p) = parked {
                p.restore(fx)?;
            }
            Err(e.into())
        }
    }
}

/// `kubeadm etcd snapshot schedule --every 12h --keep 5 [--disable]`.
pub fn schedule(root: &Path, args: ScheduleArgs) -> Result<()> {
    let fx = effects(root, args.dry_run);
    let fx = fx.as_ref();
    if args.disable {
        return timers::remove(fx, SNAPSHOT_UNIT);
    }
    if args.keep == 0 {
        return Err(super::super::flag_error(
            "keep",
            "0",
            "keep at least one snapshot",
        ));
    }
    let every = duration_flag("every", &args.every)?;
    let keep = args.keep.to_string();
    let job = TimerJob {
        name: SNAPSHOT_UNIT.into(),
        description: format!(
            "kubeadm etcd snapshot (every {}, keeping {keep})",
            args.every
        ),
        command: timers::kubeadm_command(root, &["etcd", "snapshot", "save", "--keep", &keep])?,
        every,
        randomized_delay: (every / 20).min(Duration::from_secs(600)),
    };
    timers::install(fx, &job)?;
    println!("[schedule] Snapshots go to {BACKUP_DIR}, the newest {keep} of kubeadm's are kept");
    Ok(())
}
