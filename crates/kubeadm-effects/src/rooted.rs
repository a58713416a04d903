//! Host paths resolved under a root as text (for programs and sockets named to other
//! processes), the root check, and the atomic write for files outside any root.

use std::io;
use std::path::Path;
use std::path::PathBuf;

use crate::EffectError;
use crate::inroot::{Resolver, Root, replace_in, sync_fd};
use crate::real::{io_err, open_root};

/// The path on the invoking file system of an absolute host path under `root`, resolved as a
/// chroot would (links followed inside the root, `..` stopping at it; components below the
/// first missing directory kept as written). For handing a path to another process (a program
/// to run, a socket to connect to); file operations go through [`crate::Effects`], which acts on
/// descriptors and cannot be redirected between resolving and acting.
pub fn resolve(root: &Path, path: &Path) -> Result<PathBuf, EffectError> {
    open_root(root, Resolver::Walk, path)?
        .real_path(path)
        .map_err(io_err("resolve", path))
}

/// Checks a root given by the operator (`--rootfs`): it must be an existing directory. Nothing
/// is created: a typo must not become a new tree of cluster files.
pub fn check_root(root: &Path) -> Result<(), EffectError> {
    let bad = |what: &str| EffectError::BadRoot {
        root: root.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, what.to_string()),
    };
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(bad("it is not a directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(bad("no such directory")),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            Err(bad("permission denied to look at it"))
        }
        Err(source) => Err(EffectError::BadRoot {
            root: root.to_path_buf(),
            source,
        }),
    }
}

/// The most a file named on the command line may hold (a configuration, a discovery file, a
/// kubeconfig): far more than any real one, little enough that a mistake such as
/// `--config /dev/zero` ends at once.
pub const INPUT_LIMIT: u64 = 4 << 20;

/// Reads a file named on the command line (on the invoking file system): it must be a regular
/// file (not a FIFO, which would block, nor a device, which may never end, nor a directory) of
/// at most `limit` bytes. Errors name the file.
pub fn read_input(path: &Path, limit: u64) -> Result<Vec<u8>, EffectError> {
    use rustix::fs::{FileType, Mode, OFlags};
    use std::io::Read;
    let refuse = |problem: String| EffectError::Input {
        path: path.to_path_buf(),
        problem,
    };
    // Non-blocking: opening a FIFO for reading would otherwise wait for a writer forever.
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| EffectError::Io {
        op: "read",
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    let st = rustix::fs::fstat(&fd).map_err(|e| EffectError::Io {
        op: "read",
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {}
        FileType::Directory => return Err(refuse("is a directory, not a file".into())),
        FileType::Fifo => return Err(refuse("is a FIFO (named pipe), not a regular file".into())),
        FileType::CharacterDevice | FileType::BlockDevice => {
            return Err(refuse("is a device, not a regular file".into()));
        }
        _ => return Err(refuse("is not a regular file".into())),
    }
    let too_big = || {
        refuse(format!(
            "is larger than {} MiB; no configuration is that large",
            limit >> 20
        ))
    };
    if u64::try_from(st.st_size).unwrap_or(u64::MAX) > limit {
        return Err(too_big());
    }
    let mut out = Vec::new();
    // Bounded again while reading: the file may grow after the fstat.
    std::fs::File::from(fd)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|source| EffectError::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        })?;
    if out.len() as u64 > limit {
        return Err(too_big());
    }
    Ok(out)
}

/// Writes `data` to `target` (a path on the invoking file system, not under a root)
/// atomically: a temp file in the same directory created with `mode` (so a key is never
/// readable by others, not even briefly), fsync, rename over the target, fsync of the
/// directory. `shown` is the path named in errors.
pub fn write_atomic(
    target: &Path,
    data: &[u8],
    mode: u32,
    shown: &Path,
) -> Result<(), EffectError> {
    let (parent, name) = match (target.parent(), target.file_name()) {
        (Some(p), Some(n)) if target.is_absolute() => (p, n),
        _ => return Err(EffectError::BadPath(target.to_path_buf())),
    };
    let root = Root::open(Path::new("/"), Resolver::Kernel).map_err(io_err("write", shown))?;
    let dir = root
        .create_dirs(parent, 0o755)
        .map_err(io_err("write", shown))?;
    replace_in(&dir, name, data, mode).map_err(io_err("write", shown))?;
    sync_fd(std::os::fd::AsFd::as_fd(&dir)).map_err(io_err("sync the directory of", shown))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn resolves_under_root() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        assert_eq!(
            resolve(r, Path::new("/etc/kubernetes/admin.conf")).unwrap(),
            r.join("etc/kubernetes/admin.conf")
        );
        // `..` stops at the root.
        assert_eq!(resolve(r, Path::new("/etc/../../x")).unwrap(), r.join("x"));
        assert!(resolve(r, Path::new("etc/x")).is_err());
    }

    #[test]
    fn writes_atomically_with_mode() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/b/key");
        write_atomic(&target, b"secret", 0o600, Path::new("/a/b/key")).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"secret");
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o600
        );
        write_atomic(&target, b"again", 0o600, Path::new("/a/b/key")).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"again");
        // No temp files left behind.
        assert_eq!(fs::read_dir(dir.path().join("a/b")).unwrap().count(), 1);
    }
}
