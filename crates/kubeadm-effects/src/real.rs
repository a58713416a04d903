//! The implementation that changes the host.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use rustix::fs::{AtFlags, Mode, OFlags};

use crate::inroot::{
    Resolver, Root, dangling, entries, is_not_dir, is_not_found, read_regular, remove_contents,
    replace_in, replace_in_with, sync_fd,
};
use crate::{CommandKind, CommandOutput, Content, EffectError, Effects};

/// Reads and writes the host under `root`, every path resolved inside it as a chroot would
/// (see the `inroot` module): a link along a path never leads out of the root.
///
/// Each written file's data is fsynced before it is renamed into place; the fsync of the
/// directories that received new names is deferred to [`Effects::sync`] (also run before a
/// command that changes the host, and when the value is dropped), so that a phase writing
/// twenty files into one directory syncs it once instead of twenty times.
#[derive(Debug, Clone)]
pub struct RealEffects {
    root: PathBuf,
    resolver: Resolver,
    /// Directories with renames not yet made durable (by host path), with their descriptors.
    unsynced: Arc<Mutex<BTreeMap<PathBuf, OwnedFd>>>,
}

impl RealEffects {
    /// Effects on the host below `root` (`/` for the real host). Check a user-given root with
    /// [`crate::check_root`] first.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self::with_resolver(root, Resolver::Kernel)
    }

    pub(crate) fn with_resolver(root: impl Into<PathBuf>, resolver: Resolver) -> Self {
        RealEffects {
            root: root.into(),
            resolver,
            unsynced: Arc::default(),
        }
    }
}

impl RealEffects {
    /// Remembers that `dir` (host path `shown`) received a new name, to fsync it at the next
    /// [`Effects::sync`].
    fn mark_unsynced(&self, shown: &Path, dir: OwnedFd) {
        if let Ok(mut unsynced) = self.unsynced.lock() {
            unsynced.entry(shown.to_path_buf()).or_insert(dir);
        }
    }
}

/// The parent and last name of a host path that names a file.
pub(crate) fn split_host(path: &Path) -> Result<(&Path, &std::ffi::OsStr), EffectError> {
    match (path.parent(), path.file_name()) {
        (Some(p), Some(n)) => Ok((p, n)),
        _ => Err(EffectError::BadPath(path.to_path_buf())),
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

/// An error of operation `op` on host path `path`.
pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> EffectError {
    let path = path.to_path_buf();
    move |source| EffectError::Io { op, path, source }
}

/// [`io_err`] that, for "Not a directory", names the file in the way: the error is about an
/// ancestor of `path` (`/etc/kubernetes` is a file), not about `path` itself.
pub(crate) fn io_err_at<'a>(
    r: &'a Root,
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> EffectError + 'a {
    move |source| {
        let source = if is_not_dir(&source) {
            in_the_way(r, path).unwrap_or(source)
        } else {
            source
        };
        io_err(op, path)(source)
    }
}

/// The first ancestor of `path` (resolved inside the root) that exists but is not a directory.
fn in_the_way(r: &Root, path: &Path) -> Option<std::io::Error> {
    let mut ancestors: Vec<&Path> = path.ancestors().skip(1).collect();
    ancestors.reverse();
    ancestors.into_iter().skip(1).find_map(|a| {
        match r.open_at(a, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()) {
            Err(e) if is_not_dir(&e) => Some(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                format!(
                    "{} is a file, not a directory (move it away or remove it)",
                    a.display()
                ),
            )),
            _ => None,
        }
    })
}

/// The root, opened; relative host paths are refused.
pub(crate) fn open_root(root: &Path, resolver: Resolver, host: &Path) -> Result<Root, EffectError> {
    if !host.is_absolute() {
        return Err(EffectError::BadPath(host.to_path_buf()));
    }
    Root::open(root, resolver).map_err(|source| EffectError::BadRoot {
        root: root.to_path_buf(),
        source,
    })
}

pub(crate) fn read_rooted(
    root: &Path,
    resolver: Resolver,
    path: &Path,
) -> Result<Option<Vec<u8>>, EffectError> {
    let r = open_root(root, resolver, path)?;
    match r
        .open_at(path, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty())
        .and_then(read_regular)
    {
        Ok(b) => Ok(Some(b)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(io_err_at(&r, "read", path)(e)),
    }
}

pub(crate) fn exists_rooted(root: &Path, resolver: Resolver, path: &Path) -> bool {
    open_root(root, resolver, path)
        .and_then(|r| {
            r.open_at(path, OFlags::PATH, Mode::empty())
                .map_err(io_err("inspect", path))
        })
        .is_ok()
}

pub(crate) fn list_rooted(
    root: &Path,
    resolver: Resolver,
    path: &Path,
) -> Result<Vec<String>, EffectError> {
    let r = open_root(root, resolver, path)?;
    let dir = match r.open_at(path, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) {
        Ok(d) => d,
        Err(e) if is_not_found(&e) => return Ok(Vec::new()),
        Err(e) => return Err(io_err("list", path)(e)),
    };
    let names = entries(dir.as_fd()).map_err(io_err("list", path))?;
    Ok(names
        .into_iter()
        .map(|(n, _)| n.to_string_lossy().into_owned())
        .collect())
}

/// What emptying a directory would find: `Ok(None)` when it is absent, a problem when it is
/// not a directory. Shared by the real run and the dry run so both say the same.
pub(crate) fn dir_to_empty(
    root: &Path,
    resolver: Resolver,
    path: &Path,
) -> Result<Result<Option<OwnedFd>, String>, EffectError> {
    let r = open_root(root, resolver, path)?;
    match r.open_at(path, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()) {
        Ok(d) => Ok(Ok(Some(d))),
        Err(e) if is_not_found(&e) => Ok(Ok(None)),
        Err(e) if is_not_dir(&e) => Ok(Err(format!(
            "{} is not a directory: left as it is",
            path.display()
        ))),
        Err(e) => Err(io_err("inspect", path)(e)),
    }
}

/// What creating directory `dir` would run into, without creating anything: its first existing
/// ancestor (resolved inside the root) must be a directory. The dry run's check of a write.
pub(crate) fn check_dirs(
    root: &Path,
    resolver: Resolver,
    dir: &Path,
    op: &'static str,
    shown: &Path,
) -> Result<(), EffectError> {
    let r = open_root(root, resolver, dir)?;
    let mut at = Some(dir);
    while let Some(d) = at {
        match r.open_at(d, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()) {
            Ok(_) => return Ok(()),
            Err(e) if is_not_found(&e) => {
                // Present as a name but not as a directory: a link whose target is missing,
                // which the real `mkdir -p` fails on.
                if r.open_at(d, OFlags::PATH | OFlags::NOFOLLOW, Mode::empty())
                    .is_ok()
                {
                    return Err(io_err(op, shown)(dangling(d)));
                }
                at = d.parent();
            }
            Err(e) => return Err(io_err_at(&r, op, shown)(e)),
        }
    }
    Ok(())
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

impl Effects for RealEffects {
    fn root(&self) -> &Path {
        &self.root
    }

    fn is_dry_run(&self) -> bool {
        false
    }

    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, EffectError> {
        read_rooted(&self.root, self.resolver, path)
    }

    fn exists(&self, path: &Path) -> bool {
        exists_rooted(&self.root, self.resolver, path)
    }

    fn list_dir(&self, path: &Path) -> Result<Vec<String>, EffectError> {
        list_rooted(&self.root, self.resolver, path)
    }

    fn write_file(&self, path: &Path, content: Content, mode: u32) -> Result<(), EffectError> {
        let r = open_root(&self.root, self.resolver, path)?;
        let (parent, name) = split_host(path)?;
        let dir = r
            .create_dirs(parent, 0o755)
            .map_err(io_err_at(&r, "write", path))?;
        replace_in(&dir, name, content.data(), mode).map_err(io_err("write", path))?;
        self.mark_unsynced(parent, dir);
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
        let r = open_root(&self.root, self.resolver, path)?;
        let (parent, name) = split_host(path)?;
        let dir = r
            .create_dirs(parent, 0o755)
            .map_err(io_err_at(&r, "write", path))?;
        replace_in_with(&dir, name, mode, fill).map_err(io_err("write", path))?;
        self.mark_unsynced(parent, dir);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<(), EffectError> {
        let r = open_root(&self.root, self.resolver, from)?;
        let (from_dir, from_name) = r.parent_of(from).map_err(io_err("rename", from))?;
        let (to_parent, to_name) = split_host(to)?;
        let to_dir = r
            .create_dirs(to_parent, 0o755)
            .map_err(io_err("rename", to))?;
        // Never replace: a move must not lose what is already at `to` (a link counts).
        if !matches!(
            rustix::fs::statat(&to_dir, to_name, AtFlags::SYMLINK_NOFOLLOW),
            Err(rustix::io::Errno::NOENT)
        ) {
            return Err(io_err("rename", from)(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} already exists", to.display()),
            )));
        }
        rustix::fs::renameat(&from_dir, &from_name, &to_dir, to_name)
            .map_err(|e| io_err("rename", from)(e.into()))?;
        if let Some(p) = from.parent() {
            self.mark_unsynced(p, from_dir);
        }
        self.mark_unsynced(to_parent, to_dir);
        Ok(())
    }

    fn remove_dir(&self, path: &Path) -> Result<(), EffectError> {
        let r = open_root(&self.root, self.resolver, path)?;
        let (dir, name) = match r.parent_of(path) {
            Ok(p) => p,
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(io_err("remove directory", path)(e)),
        };
        match rustix::fs::unlinkat(&dir, &name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(io_err("remove directory", path)(e.into())),
        }
    }

    fn create_dir_all(&self, path: &Path, mode: u32) -> Result<(), EffectError> {
        let r = open_root(&self.root, self.resolver, path)?;
        r.create_dirs(path, mode)
            .map(drop)
            .map_err(io_err_at(&r, "create directory", path))
    }

    fn remove_file(&self, path: &Path) -> Result<(), EffectError> {
        let r = open_root(&self.root, self.resolver, path)?;
        let (dir, name) = match r.parent_of(path) {
            Ok(p) => p,
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(io_err("remove", path)(e)),
        };
        match rustix::fs::unlinkat(&dir, &name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(io_err("remove", path)(e.into())),
        }
    }

    fn remove_dir_contents(&self, path: &Path) -> Result<Vec<String>, EffectError> {
        let mut problems = Vec::new();
        match dir_to_empty(&self.root, self.resolver, path)? {
            Ok(None) => {}
            Ok(Some(dir)) => remove_contents(dir.as_fd(), path, &mut problems),
            Err(problem) => problems.push(problem),
        }
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
        for (shown, dir) in &dirs {
            sync_fd(dir.as_fd()).map_err(io_err("sync the directory", shown))?;
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
    fn a_directory_linked_out_of_the_root_is_followed_inside_it() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), b"keep").unwrap();
        std::fs::create_dir_all(root.path().join("var/lib")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("var/lib/etcd")).unwrap();
        let fx = RealEffects::new(root.path());
        let problems = fx.remove_dir_contents(Path::new("/var/lib/etcd")).unwrap();
        // The absolute link is followed inside the root, where its target does not exist.
        assert!(problems.is_empty(), "{problems:?}");
        assert!(outside.path().join("precious").exists());
    }
}
