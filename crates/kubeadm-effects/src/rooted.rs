//! Host paths resolved under a root, and the atomic write every file goes through.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::EffectError;

/// Resolves an absolute host path under `root`; refuses relative paths and `..`.
pub fn resolve(root: &Path, path: &Path) -> Result<PathBuf, EffectError> {
    if !path.is_absolute() {
        return Err(EffectError::BadPath(path.to_path_buf()));
    }
    let mut out = root.to_path_buf();
    for c in path.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(EffectError::BadPath(path.to_path_buf()));
            }
        }
    }
    Ok(out)
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> EffectError + 'a {
    move |source| EffectError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `data` to `target` atomically: a temp file in the same directory created with `mode`
/// (so a key is never readable by others, not even briefly), fsync, rename over the target,
/// fsync of the directory. `shown` is the path named in errors.
pub fn write_atomic(
    target: &Path,
    data: &[u8],
    mode: u32,
    shown: &Path,
) -> Result<(), EffectError> {
    let dir = replace_file(target, data, mode, shown)?;
    sync_dir(dir, shown)
}

/// Makes the entries of `dir` (renames into it) durable. `shown` is the path named in errors.
/// File systems that cannot fsync a directory (EINVAL, ENOTSUP) give no stronger guarantee to
/// ask for, so those refusals are not errors.
pub(crate) fn sync_dir(dir: &Path, shown: &Path) -> Result<(), EffectError> {
    match fs::File::open(dir).and_then(|d| d.sync_all()) {
        Err(e)
            if !matches!(
                e.kind(),
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::Unsupported
            ) =>
        {
            Err(io("sync the directory of", shown)(e))
        }
        _ => Ok(()),
    }
}

/// [`write_atomic`] without the directory fsync: the file's data is durable before the rename
/// (so a crash leaves the old or the new file, never a torn one), the new name becomes durable
/// with the next fsync of the returned directory. Lets a caller writing many files into one
/// directory sync it once.
pub(crate) fn replace_file<'t>(
    target: &'t Path,
    data: &[u8],
    mode: u32,
    shown: &Path,
) -> Result<&'t Path, EffectError> {
    replace_file_with(target, mode, shown, &mut |f| f.write_all(data))
}

/// [`replace_file`] with the content produced by `fill` (a stream too large to hold in memory);
/// when `fill` fails the temp file is removed and the target is untouched.
pub(crate) fn replace_file_with<'t>(
    target: &'t Path,
    mode: u32,
    shown: &Path,
    fill: &mut dyn FnMut(&mut fs::File) -> std::io::Result<()>,
) -> Result<&'t Path, EffectError> {
    let dir = target
        .parent()
        .ok_or_else(|| EffectError::BadPath(shown.to_path_buf()))?;
    create_dirs(dir, 0o755, shown)?;
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("file");
    let mut tmp = None;
    for attempt in 0..16u32 {
        let candidate = dir.join(format!(".{name}.tmp-{}-{attempt}", std::process::id()));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&candidate)
        {
            Ok(f) => {
                tmp = Some((candidate, f));
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io("write", shown)(e)),
        }
    }
    let (tmp_path, mut file) = tmp.ok_or_else(|| {
        io("write", shown)(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "no free temporary file name",
        ))
    })?;
    let result = (|| {
        fill(&mut file)?;
        // The umask may have narrowed the mode at creation; set it exactly.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        fs::rename(&tmp_path, target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp_path);
    }
    result.map_err(io("write", shown))?;
    Ok(dir)
}

/// `mkdir -p` with `mode` for the directories it creates.
pub(crate) fn create_dirs(dir: &Path, mode: u32, shown: &Path) -> Result<(), EffectError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(io("create directory", shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_under_root() {
        let r = Path::new("/tmp/root");
        assert_eq!(
            resolve(r, Path::new("/etc/kubernetes/admin.conf")).unwrap(),
            Path::new("/tmp/root/etc/kubernetes/admin.conf")
        );
        assert!(resolve(r, Path::new("etc/x")).is_err());
        assert!(resolve(r, Path::new("/etc/../../x")).is_err());
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
