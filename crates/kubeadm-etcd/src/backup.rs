//! Snapshot files on the node: saving one through the effects layer with its record next to it,
//! checking one, and pruning old ones.
//!
//! A snapshot `NAME.db` is written 0600 (temp file, fsync, rename; its directory 0700) and
//! followed by `NAME.db.meta.json`, which records its SHA-256, size, revision and key count and
//! marks it as written by kubeadm. The record is written last, so a snapshot without one is
//! either someone else's or unfinished, and pruning never touches it.

use kubeadm_errors::Hint;
use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::digest;
use kubeadm_effects::{Content, EffectError, Effects};
use serde::{Deserialize, Serialize};

use crate::snapshot::{self, HASH_LEN, Streamed};
use crate::{EtcdClient, EtcdError, bolt};

/// Where snapshots go when no file is named.
pub const BACKUP_DIR: &str = "/var/lib/kubeadm/backups";
/// File names of the snapshots kubeadm names itself: `etcd-snapshot-<UTC time>.db`.
pub const NAME_PREFIX: &str = "etcd-snapshot-";
/// Suffix of the record written next to each snapshot.
pub const META_SUFFIX: &str = ".meta.json";
/// `kind` of the record, which pruning requires before deleting anything.
pub const META_KIND: &str = "EtcdSnapshotRecord";
const META_API: &str = "kubeadm-rs.io/v1";

/// The record written next to a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Always `kubeadm-rs.io/v1`.
    pub api_version: String,
    /// Always [`META_KIND`].
    pub kind: String,
    /// The snapshot's file name (without directory), so a record copied elsewhere cannot
    /// vouch for another file.
    pub file: String,
    /// SHA-256 of the whole file, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// The newest revision the snapshot holds.
    pub revision: i64,
    /// Keys over every bucket (as `etcdutl snapshot status` counts them).
    pub total_keys: u64,
    /// When it was taken (RFC 3339, UTC).
    pub created_at: String,
    /// The endpoint that served it.
    pub endpoint: String,
    /// etcd's cluster id, hex.
    pub cluster_id: String,
}

/// Why a snapshot could not be saved, checked or pruned; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file operation failed.
    #[error(transparent)]
    Effect(#[from] EffectError),
    /// etcd could not deliver the snapshot.
    #[error("cannot take a snapshot: {0}")]
    Etcd(#[from] EtcdError),
    /// The snapshot file is not a sound etcd snapshot.
    #[error("snapshot {path} is unusable: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The snapshot does not exist.
    #[error("snapshot {0} does not exist")]
    Missing(PathBuf),
}

impl Hint for BackupError {
    fn hint(&self) -> Option<String> {
        match self {
            BackupError::Corrupt { .. } => Some(
                "use another snapshot (`ls /var/lib/kubeadm/backups`); this one was not changed"
                    .into(),
            ),
            BackupError::Etcd(_) => Some(
                "check that etcd is healthy and that the certificate in use is signed by the etcd CA (`kubeadm etcd member list`)".into(),
            ),
            BackupError::Missing(_) => Some("name an existing snapshot file".into()),
            BackupError::Effect(_) => None,
        }
    }
}

/// The path of the record of snapshot `path`.
pub fn record_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(META_SUFFIX);
    PathBuf::from(s)
}

/// `2026-01-02T03:04:05Z` for `unix` seconds (the epoch for a time out of range).
pub fn rfc3339(unix: i64) -> String {
    kubeadm_api::dates::rfc3339(unix)
        .or_else(|| kubeadm_api::dates::rfc3339(0))
        .unwrap_or_default()
}

/// The file name of a snapshot taken at `unix` seconds: `etcd-snapshot-20260102T030405Z.db`
/// (the RFC 3339 time without separators, so names sort as times do).
pub fn default_name(unix: i64) -> String {
    let stamp: String = rfc3339(unix)
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    format!("{NAME_PREFIX}{stamp}.db")
}

/// A writer hashing what passes through, holding back the last 32 bytes so that both the
/// database's digest (to compare with the hash etcd appends) and the whole file's digest come
/// from one pass: SHA-256 state can be cloned at the database's end and continued.
struct Hashing<'a> {
    inner: &'a mut dyn Write,
    ctx: digest::Context,
    tail: Vec<u8>,
}

impl Write for Hashing<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write_all(buf)?;
        if buf.len() >= HASH_LEN {
            // Everything held back so far and all but the last 32 bytes of `buf` are database.
            let cut = buf.len() - HASH_LEN;
            self.ctx.update(&self.tail);
            self.ctx.update(&buf[..cut]);
            self.tail.clear();
            self.tail.extend_from_slice(&buf[cut..]);
        } else {
            self.tail.extend_from_slice(buf);
            if self.tail.len() > HASH_LEN {
                let cut = self.tail.len() - HASH_LEN;
                self.ctx.update(&self.tail[..cut]);
                self.tail.drain(..cut);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Streams a snapshot from `client` to `path` (0600, parent 0700) and writes its record.
/// The stream is checked against etcd's appended hash before the file takes its name, and the
/// database is walked before the record is written; a failure at any step leaves no snapshot
/// and no record. `now` is the Unix time recorded. In a dry run nothing is asked of etcd and
/// the writes are only shown.
pub fn save(
    fx: &dyn Effects,
    client: &EtcdClient,
    path: &Path,
    now: i64,
) -> Result<Option<Record>, BackupError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    fx.create_dir_all(dir, 0o700)?;
    if fx.is_dry_run() {
        fx.write_with(path, 0o600, "etcd snapshot", &mut |_| Ok(()))?;
        fx.write_file(
            &record_path(path),
            Content::Plain(b"(SHA-256, size, revision and key count of the snapshot)\n".to_vec()),
            0o600,
        )?;
        return Ok(None);
    }
    let mut streamed: Option<Result<Streamed, EtcdError>> = None;
    let mut whole = String::new();
    let written = fx.write_with(path, 0o600, "etcd snapshot", &mut |file| {
        let mut w = Hashing {
            inner: file,
            ctx: digest::Context::new(&digest::SHA256),
            tail: Vec::with_capacity(2 * HASH_LEN),
        };
        let result = client.snapshot(&mut w);
        let failed = result.is_err();
        streamed = Some(result);
        if failed {
            return Err(std::io::Error::other("the snapshot stream failed"));
        }
        let db = w.ctx.clone().finish();
        if w.tail.len() != HASH_LEN || db.as_ref() != w.tail.as_slice() {
            return Err(std::io::Error::other(
                "the data etcd sent does not match the SHA-256 it appended (damaged in transit)",
            ));
        }
        w.ctx.update(&w.tail);
        whole = snapshot::hex(w.ctx.finish().as_ref());
        w.inner.flush()
    });
    if let Err(e) = written {
        return Err(match streamed.take() {
            Some(Err(etcd)) => BackupError::Etcd(etcd),
            _ => e.into(),
        });
    }
    let streamed = match streamed {
        Some(Ok(s)) => s,
        Some(Err(e)) => return Err(e.into()),
        None => return Err(BackupError::Missing(path.to_path_buf())),
    };
    let corrupt = |message: String| BackupError::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    // Read back what reached the disk: the revision and key count come from the database itself
    // (a response header's revision could be newer than the snapshot under a write load).
    let status = fx
        .read(path)?
        .ok_or_else(|| BackupError::Missing(path.to_path_buf()))
        .and_then(|data| {
            let db = &data[..data.len().saturating_sub(HASH_LEN)];
            bolt::status(db).map_err(corrupt)
        });
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            fx.remove_file(path)?;
            return Err(e);
        }
    };
    let record = Record {
        api_version: META_API.into(),
        kind: META_KIND.into(),
        file: file_name(path),
        sha256: whole,
        size: streamed.size,
        revision: status.revision,
        total_keys: status.total_keys,
        created_at: rfc3339(now),
        endpoint: streamed.endpoint,
        cluster_id: format!("{:x}", streamed.cluster_id),
    };
    let json = serde_json::to_vec_pretty(&record).map_err(|e| corrupt(e.to_string()))?;
    fx.write_file(&record_path(path), Content::Plain(json), 0o600)?;
    fx.sync()?;
    Ok(Some(record))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A snapshot file checked for `status` and `restore`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// What the file itself shows.
    pub checked: snapshot::Checked,
    /// Its record, when kubeadm wrote one (and then its checksum and size matched).
    pub record: Option<Record>,
}

/// Checks snapshot `path`: etcd's appended hash, the database pages, and, when a record is
/// next to it, the recorded SHA-256 and size. Reads only.
pub fn status(fx: &dyn Effects, path: &Path) -> Result<Status, BackupError> {
    let corrupt = |message: String| BackupError::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    let data = fx
        .read(path)?
        .ok_or_else(|| BackupError::Missing(path.to_path_buf()))?;
    let record = match fx.read(&record_path(path))? {
        None => None,
        Some(bytes) => {
            let r: Record = serde_json::from_slice(&bytes).map_err(|e| {
                corrupt(format!(
                    "its record {} cannot be read: {e}",
                    record_path(path).display()
                ))
            })?;
            Some(r)
        }
    };
    if let Some(r) = &record
        && r.size != data.len() as u64
    {
        return Err(corrupt(format!(
            "it has {} bytes, its record says {} (truncated or appended to)",
            data.len(),
            r.size
        )));
    }
    let checked = snapshot::check(&data).map_err(corrupt)?;
    if let Some(r) = &record
        && r.sha256 != checked.sha256
    {
        return Err(corrupt(format!(
            "its SHA-256 is {}, its record says {}",
            checked.sha256, r.sha256
        )));
    }
    Ok(Status { checked, record })
}

/// Deletes all but the newest `keep` snapshots in `dir` that kubeadm wrote (named
/// `etcd-snapshot-….db`, with a record of [`META_KIND`] naming that file); returns the deleted
/// paths. Any other file is left alone.
pub fn prune(fx: &dyn Effects, dir: &Path, keep: usize) -> Result<Vec<PathBuf>, BackupError> {
    let mut ours: Vec<(String, PathBuf)> = Vec::new();
    for name in fx.list_dir(dir)? {
        if !name.starts_with(NAME_PREFIX) || !name.ends_with(".db") {
            continue;
        }
        let path = dir.join(&name);
        let Some(bytes) = fx.read(&record_path(&path))? else {
            continue;
        };
        let Ok(r) = serde_json::from_slice::<Record>(&bytes) else {
            continue;
        };
        if r.kind == META_KIND && r.api_version == META_API && r.file == name {
            ours.push((r.created_at.clone(), path));
        }
    }
    // Newest first; RFC 3339 in UTC sorts as time does, the name breaks ties.
    ours.sort_by(|a, b| b.cmp(a));
    let mut removed = Vec::new();
    for (_, path) in ours.into_iter().skip(keep) {
        fx.remove_file(&path)?;
        fx.remove_file(&record_path(&path))?;
        removed.push(path);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubeadm_effects::RealEffects;

    fn record(file: &str, at: &str) -> Vec<u8> {
        serde_json::to_vec(&Record {
            api_version: META_API.into(),
            kind: META_KIND.into(),
            file: file.into(),
            sha256: String::new(),
            size: 0,
            revision: 1,
            total_keys: 1,
            created_at: at.into(),
            endpoint: String::new(),
            cluster_id: String::new(),
        })
        .unwrap()
    }

    #[test]
    fn pruning_keeps_the_newest_and_never_touches_other_files() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("var/lib/kubeadm/backups");
        std::fs::create_dir_all(&dir).unwrap();
        for (i, at) in [
            "2026-01-01T00:00:00Z",
            "2026-01-03T00:00:00Z",
            "2026-01-02T00:00:00Z",
        ]
        .iter()
        .enumerate()
        {
            let name = format!("{NAME_PREFIX}{i}.db");
            std::fs::write(dir.join(&name), b"db").unwrap();
            std::fs::write(dir.join(format!("{name}{META_SUFFIX}")), record(&name, at)).unwrap();
        }
        // Not ours: no record, a record for another file, a foreign name.
        std::fs::write(dir.join(format!("{NAME_PREFIX}manual.db")), b"x").unwrap();
        let stray = format!("{NAME_PREFIX}copied.db");
        std::fs::write(dir.join(&stray), b"x").unwrap();
        std::fs::write(
            dir.join(format!("{stray}{META_SUFFIX}")),
            record("etcd-snapshot-0.db", "2000-01-01T00:00:00Z"),
        )
        .unwrap();
        std::fs::write(dir.join("notes.txt"), b"x").unwrap();
        let fx = RealEffects::new(root.path());
        let removed = prune(&fx, Path::new("/var/lib/kubeadm/backups"), 1).unwrap();
        let mut names: Vec<String> = removed.iter().map(|p| file_name(p)).collect();
        names.sort();
        assert_eq!(names, vec!["etcd-snapshot-0.db", "etcd-snapshot-2.db"]);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            vec![
                "etcd-snapshot-1.db",
                "etcd-snapshot-1.db.meta.json",
                "etcd-snapshot-copied.db",
                "etcd-snapshot-copied.db.meta.json",
                "etcd-snapshot-manual.db",
                "notes.txt"
            ]
        );
    }

    #[test]
    fn names_sort_by_time() {
        assert_eq!(default_name(0), "etcd-snapshot-19700101T000000Z.db");
        assert!(default_name(1_800_000_000) > default_name(1_700_000_000));
    }
}
