//! The implementation that changes the host.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::rooted::{create_dirs, replace_file, replace_file_with, resolve, sync_dir};
use crate::{CommandKind, CommandOutput, Content, EffectError, Effects};

/// Reads and writes the host under `root`.
///
/// Each written file's data is fsynced before it is renamed into place; the fsync of the
/// directories that received new names is deferred to [`Effects::sync`] (also run before a
/// command that changes the host, and when the value is dropped), so that a phase writing
/// twenty files into one directory syncs it once instead of twenty times.
#[derive(Debug, Clone)]
pub struct RealEffects {
    root: PathBuf,
    /// Directories with renames not yet made durable, each with a host path for messages.
    unsynced: Arc<Mutex<BTreeMap<PathBuf, PathBuf>>>,
}

impl RealEffects {
    /// Effects on the host below `root` (`/` for the real host).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RealEffects {
            root: root.into(),
            unsynced: Arc::default(),
        }
    }
}

impl RealEffects {
    /// Remembers that `dir` received a new name, to fsync it at the next [`Effects::sync`].
    fn mark_unsynced(&self, dir: &Path, shown: &Path) {
        if let Ok(mut unsynced) = self.unsynced.lock() {
            unsynced
                .entry(dir.to_path_buf())
                .or_insert_with(|| shown.to_path_buf());
        }
    }
}

impl Drop for RealEffects {
    fn drop(&mut self) {
        // The last handle makes the remaining renames durable; errors were reportable through
        // an explicit `sync` and are logged here.
        if Arc::strong_count(&self.unsynced) == 1
            && let Err(e) = self.sync()
        {
            tracing::warn!("{e}");
        }
    }
}

pub(crate) fn read_rooted(root: &Path, path: &Path) -> Result<Option<Vec<u8>>, EffectError> {
    let real = resolve(root, path)?;
    match fs::read(&real) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(EffectError::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

pub(crate) fn list_rooted(root: &Path, path: &Path) -> Result<Vec<String>, EffectError> {
    let real = resolve(root, path)?;
    let entries = match fs::read_dir(&real) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(EffectError::Io {
                op: "list",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

pub(crate) fn run_command(program: &str, args: &[&str]) -> Result<CommandOutput, EffectError> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| EffectError::Spawn {
            program: program.to_string(),
            source,
        })?;
    Ok(CommandOutput {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Removes the entries of `dir` (a real directory, not a link) depth first without following
/// symlinks; `shown` is the host path used in messages.
fn remove_contents(dir: &Path, shown: &Path, problems: &mut Vec<String>) {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(format!("cannot list {}: {e}", shown.display()));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let shown_child = shown.join(entry.file_name());
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let result = if is_dir {
            remove_contents(&path, &shown_child, problems);
            fs::remove_dir(&path)
        } else {
            fs::remove_file(&path)
        };
        if let Err(e) = result {
            problems.push(format!("cannot remove {}: {e}", shown_child.display()));
        }
    }
}

impl Effects for RealEffects {
    fn root(&self) -> &Path {
        &self.root
    }

    fn is_dry_run(&self) -> bool {
        false
    }

    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, EffectError> {
        read_rooted(&self.root, path)
    }

    fn exists(&self, path: &Path) -> bool {
        resolve(&self.root, path)
            .map(|p| p.symlink_metadata().is_ok())
            .unwrap_or(false)
    }

    fn list_dir(&self, path: &Path) -> Result<Vec<String>, EffectError> {
        list_rooted(&self.root, path)
    }

    fn write_file(&self, path: &Path, content: Content, mode: u32) -> Result<(), EffectError> {
        let real = resolve(&self.root, path)?;
        let dir = replace_file(&real, content.data(), mode, path)?;
        self.mark_unsynced(dir, path);
        tracing::debug!(path = %path.display(), mode = format_args!("{mode:04o}"), "wrote file");
        Ok(())
    }

    fn write_with(
        &self,
        path: &Path,
        mode: u32,
        _what: &str,
        fill: &mut dyn FnMut(&mut dyn std::io::Write) -> std::io::Result<()>,
    ) -> Result<(), EffectError> {
        let real = resolve(&self.root, path)?;
        let dir = replace_file_with(&real, mode, path, &mut |f| fill(f))?;
        self.mark_unsynced(dir, path);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<(), EffectError> {
        let (real_from, real_to) = (resolve(&self.root, from)?, resolve(&self.root, to)?);
        let err = |source| EffectError::Io {
            op: "rename",
            path: from.to_path_buf(),
            source,
        };
        if real_to.symlink_metadata().is_ok() {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} already exists", to.display()),
            )));
        }
        if let Some(parent) = real_to.parent() {
            create_dirs(parent, 0o755, to)?;
        }
        fs::rename(&real_from, &real_to).map_err(err)?;
        for (real, shown) in [(&real_from, from), (&real_to, to)] {
            if let Some(dir) = real.parent() {
                self.mark_unsynced(dir, shown);
            }
        }
        Ok(())
    }

    fn create_dir_all(&self, path: &Path, mode: u32) -> Result<(), EffectError> {
        let real = resolve(&self.root, path)?;
        create_dirs(&real, mode, path)
    }

    fn remove_file(&self, path: &Path) -> Result<(), EffectError> {
        let real = resolve(&self.root, path)?;
        match fs::remove_file(&real) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(EffectError::Io {
                op: "remove",
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    fn remove_dir(&self, path: &Path) -> Result<(), EffectError> {
        let real = resolve(&self.root, path)?;
        match fs::remove_dir(&real) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(EffectError::Io {
                op: "remove directory",
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    fn remove_dir_contents(&self, path: &Path) -> Result<Vec<String>, EffectError> {
        let real = resolve(&self.root, path)?;
        let mut problems = Vec::new();
        match fs::symlink_metadata(&real) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(problems),
            Err(source) => {
                return Err(EffectError::Io {
                    op: "inspect",
                    path: path.to_path_buf(),
                    source,
                });
            }
            // A directory that is itself a symlink is not ours to empty: it may point anywhere.
            Ok(m) if !m.is_dir() => {
                problems.push(format!(
                    "{} is not a directory (not followed)",
                    path.display()
                ));
                return Ok(problems);
            }
            Ok(_) => {}
        }
        remove_contents(&real, path, &mut problems);
        Ok(problems)
    }

    fn run(
        &self,
        kind: CommandKind,
        program: &str,
        args: &[&str],
    ) -> Result<CommandOutput, EffectError> {
        // A command that changes the host (restarting the kubelet) may act on the files written
        // so far: they must survive a crash from then on.
        if kind == CommandKind::Mutate {
            self.sync()?;
        }
        run_command(program, args)
    }

    fn sync(&self) -> Result<(), EffectError> {
        let dirs = match self.unsynced.lock() {
            Ok(mut unsynced) => std::mem::take(&mut *unsynced),
            Err(_) => return Ok(()),
        };
        for (dir, shown) in &dirs {
            sync_dir(dir, shown)?;
        }
        Ok(())
    }

    fn note(&self, message: &str) {
        // Notes are for the operator (what was not done and why), like kubeadm's own output.
        println!("{message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emptying_a_directory_never_follows_symlinks_out_of_it() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), b"keep").unwrap();
        let dir = root.path().join("var/lib/kubelet");
        std::fs::create_dir_all(dir.join("pods/a")).unwrap();
        std::fs::write(dir.join("pods/a/f"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.join("link")).unwrap();
        let fx = RealEffects::new(root.path());
        let problems = fx
            .remove_dir_contents(Path::new("/var/lib/kubelet"))
            .unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert!(dir.is_dir(), "the directory itself stays");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        assert_eq!(
            std::fs::read(outside.path().join("precious")).unwrap(),
            b"keep"
        );
    }

    #[test]
    fn directories_are_synced_once_for_many_writes() {
        let root = tempfile::tempdir().unwrap();
        let fx = RealEffects::new(root.path());
        for f in ["a.key", "a.crt", "b.key"] {
            let p = Path::new("/etc/kubernetes/pki").join(f);
            fx.write_file(&p, Content::Plain(f.as_bytes().to_vec()), 0o600)
                .unwrap();
            // Visible at once, before any directory sync.
            assert_eq!(fx.read(&p).unwrap().unwrap(), f.as_bytes());
        }
        fx.write_file(
            Path::new("/etc/kubernetes/admin.conf"),
            Content::Plain(b"x".to_vec()),
            0o600,
        )
        .unwrap();
        assert_eq!(
            fx.unsynced.lock().unwrap().len(),
            2,
            "one entry per directory"
        );
        fx.sync().unwrap();
        assert!(fx.unsynced.lock().unwrap().is_empty());
    }

    #[test]
    fn a_directory_that_is_a_symlink_is_not_emptied() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), b"keep").unwrap();
        std::fs::create_dir_all(root.path().join("var/lib")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("var/lib/etcd")).unwrap();
        let fx = RealEffects::new(root.path());
        let problems = fx.remove_dir_contents(Path::new("/var/lib/etcd")).unwrap();
        assert_eq!(problems.len(), 1);
        assert!(outside.path().join("precious").exists());
    }
}
