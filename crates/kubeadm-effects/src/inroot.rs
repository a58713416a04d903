//! Host paths resolved inside the root directory as a chroot would, for every file operation.
//!
//! A host path (`/etc/kubernetes/pki/ca.key`) is never joined to the root as text: it is walked
//! component by component from a descriptor of the root, so a symbolic link anywhere along it
//! (absolute or relative, in the middle or last) is followed *inside* the root and `..` stops at
//! the root. The kernel does exactly that with `openat2(RESOLVE_IN_ROOT)` (Linux 5.6+); where it
//! is missing (or filtered by a seccomp profile) the same walk is done here with `openat`,
//! `fstatat` and `readlinkat` on descriptors, never on joined strings. Every operation then acts
//! through the descriptor of the directory that was reached (`openat`, `renameat`, `unlinkat`),
//! so a link swapped in afterwards cannot redirect it out of the root.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Links followed in one resolution before giving up with ELOOP (the kernel's limit).
const MAX_LINKS: usize = 40;

/// Set once `openat2` has been refused by this kernel: later calls go straight to the walk.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// How a path is resolved; both give the same answer, the kernel's is race-free by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolver {
    /// `openat2(RESOLVE_IN_ROOT)`, falling back to [`Resolver::Walk`] when the kernel lacks it.
    Kernel,
    /// The walk done here.
    Walk,
}

/// One step of a host path: a name, or `..`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Name(OsString),
    Up,
}

fn steps(path: &Path) -> Vec<Step> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(Step::Name(n.to_os_string())),
            Component::ParentDir => Some(Step::Up),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// An open root directory.
#[derive(Debug)]
pub(crate) struct Root {
    fd: OwnedFd,
    path: PathBuf,
    resolver: Resolver,
}

/// Where a walk ended: the directory holding the last component, that directory's path below
/// the root (links resolved), the last name (`None`: the path names that directory itself) and,
/// for a lenient walk, the steps below the first missing directory.
struct Walked {
    dir: OwnedFd,
    dir_names: Vec<OsString>,
    last: Option<OsString>,
    missing: Vec<Step>,
}

impl Root {
    /// Opens `path` (which must be an existing directory) as the root.
    pub(crate) fn open(path: &Path, resolver: Resolver) -> io::Result<Root> {
        let fd = rfs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
            resolver,
        })
    }

    /// Opens a host path inside the root with `flags` (a last-component link is followed inside
    /// the root unless `flags` has `NOFOLLOW`).
    pub(crate) fn open_at(&self, host: &Path, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        let flags = flags | OFlags::CLOEXEC;
        if self.resolver == Resolver::Kernel && !NO_OPENAT2.load(Ordering::Relaxed) {
            let rel = relative(host);
            for _ in 0..8 {
                match rfs::openat2(
                    &self.fd,
                    &rel,
                    flags,
                    mode,
                    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
                ) {
                    // A rename elsewhere raced with a `..` step: the kernel asks to retry.
                    Err(Errno::AGAIN) => continue,
                    Err(Errno::NOSYS | Errno::PERM | Errno::TOOBIG) => {
                        NO_OPENAT2.store(true, Ordering::Relaxed);
                        break;
                    }
                    other => return other.map_err(Into::into),
                }
            }
        }
        let follow = !flags.contains(OFlags::NOFOLLOW);
        let w = self.walk(host, follow, false)?;
        let name: &OsStr = w.last.as_deref().unwrap_or(OsStr::new("."));
        // NOFOLLOW: the walk has already followed a last link; if one was swapped in since,
        // fail rather than follow it out of the root.
        Ok(rfs::openat(&w.dir, name, flags | OFlags::NOFOLLOW, mode)?)
    }

    /// The directory holding a host path's last component, opened for `*at` calls, and that
    /// name. The last component itself is not followed (rename and unlink act on it).
    pub(crate) fn parent_of(&self, host: &Path) -> io::Result<(OwnedFd, OsString)> {
        let (parent, name) = split(host)?;
        let dir = self.open_at(parent, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())?;
        Ok((dir, name))
    }

    /// `mkdir -p` inside the root: the directory (opened for reading), creating what is
    /// missing with `mode` (minus the umask, as `mkdir` does).
    pub(crate) fn create_dirs(&self, host: &Path, mode: u32) -> io::Result<OwnedFd> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY;
        match self.open_at(host, flags, Mode::empty()) {
            Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {}
            other => return other,
        }
        let (parent, name) = split(host)?;
        let pdir = self.create_dirs(parent, mode)?;
        match rfs::mkdirat(&pdir, &name, Mode::from_raw_mode(mode)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        // Opened again through the root: a dangling link in the way resolves as it would in a
        // chroot, and fails the same way (`mkdir -p` there: "File exists").
        match self.open_at(host, flags, Mode::empty()) {
            Err(e) if is_not_found(&e) => Err(dangling(host)),
            other => other,
        }
    }

    /// The path of a host path on the invoking file system: the root joined with the
    /// components the walk resolved (links followed inside the root, `..` clamped), then the
    /// components below the first missing directory as written.
    pub(crate) fn real_path(&self, host: &Path) -> io::Result<PathBuf> {
        let w = self.walk(host, true, true)?;
        let mut names = w.dir_names;
        names.extend(w.last);
        for s in w.missing {
            match s {
                Step::Name(n) => names.push(n),
                Step::Up => {
                    names.pop();
                }
            }
        }
        let mut out = self.path.clone();
        out.extend(names);
        Ok(out)
    }

    /// The walk: from the root, one component at a time, links expanded in place (absolute
    /// ones from the root again), `..` popping back no further than the root.
    fn walk(&self, host: &Path, follow_last: bool, lenient: bool) -> io::Result<Walked> {
        let mut dirs: Vec<(OwnedFd, OsString)> = vec![(self.fd.try_clone()?, OsString::new())];
        let mut pending: VecDeque<Step> = steps(host).into();
        let mut links = 0usize;
        // Ends the walk in the directory on top of the stack.
        let finish = |mut dirs: Vec<(OwnedFd, OsString)>, last, missing| {
            let dir_names = dirs.iter().skip(1).map(|(_, n)| n.clone()).collect();
            match dirs.pop() {
                Some((dir, _)) => Ok(Walked {
                    dir,
                    dir_names,
                    last,
                    missing,
                }),
                None => Err(io::Error::from(Errno::NOENT)),
            }
        };
        loop {
            let Some(step) = pending.pop_front() else {
                // The path names a directory (the root, or reached by `..` or a link): the
                // caller opens "." of it.
                return finish(dirs, None, Vec::new());
            };
            let last = pending.is_empty();
            let name = match step {
                Step::Up => {
                    if dirs.len() > 1 {
                        dirs.pop();
                    }
                    continue;
                }
                Step::Name(n) => n,
            };
            let top = &dirs[dirs.len() - 1].0;
            match rfs::statat(top, &name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st)
                    if FileType::from_raw_mode(st.st_mode) == FileType::Symlink
                        && (follow_last || !last) =>
                {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(Errno::LOOP.into());
                    }
                    let target = rfs::readlinkat(top, &name, Vec::new())?;
                    let target = PathBuf::from(OsString::from_vec(target.into_bytes()));
                    if target.as_os_str().is_empty() {
                        return Err(Errno::NOENT.into());
                    }
                    if target.is_absolute() {
                        dirs.truncate(1);
                    }
                    for s in steps(&target).into_iter().rev() {
                        pending.push_front(s);
                    }
                }
                Ok(_) | Err(Errno::NOENT) if last => {
                    return finish(dirs, Some(name), Vec::new());
                }
                Ok(_) => {
                    let fd = rfs::openat(
                        top,
                        &name,
                        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?;
                    dirs.push((fd, name));
                }
                Err(Errno::NOENT) if lenient => {
                    let mut missing = vec![Step::Name(name)];
                    missing.extend(pending);
                    return finish(dirs, None, missing);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The error for a link in the way of `mkdir -p` whose target does not exist inside the root.
pub(crate) fn dangling(host: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "{} is a symbolic link to a directory that does not exist inside the root",
            host.display()
        ),
    )
}

/// The host path as a path relative to the root descriptor (`.` for the root itself).
fn relative(host: &Path) -> PathBuf {
    let rel: PathBuf = host
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
        .collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

/// The lexical parent and last name of a host path; `/` and paths ending in `..` have none.
fn split(host: &Path) -> io::Result<(&Path, OsString)> {
    match (host.parent(), host.file_name()) {
        (Some(p), Some(n)) => Ok((p, n.to_os_string())),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path names no file (it is the root or ends in '..')",
        )),
    }
}

/// Reads a whole regular file from a descriptor; a FIFO, device or socket is refused (it could
/// block forever or never end).
pub(crate) fn read_regular(fd: OwnedFd) -> io::Result<Vec<u8>> {
    let st = rfs::fstat(&fd)?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {}
        FileType::Directory => return Err(Errno::ISDIR.into()),
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a regular file ({other:?})"),
            ));
        }
    }
    let mut out = Vec::new();
    std::fs::File::from(fd).read_to_end(&mut out)?;
    Ok(out)
}

/// The entry names of an open directory, sorted, without `.` and `..`.
pub(crate) fn entries(dir: BorrowedFd<'_>) -> io::Result<Vec<(OsString, FileType)>> {
    let mut out = Vec::new();
    for e in rfs::Dir::read_from(dir)? {
        let e = e?;
        let name = OsStr::from_bytes(e.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        let mut kind = e.file_type();
        // Some file systems do not say in the entry; ask without following a link.
        if kind == FileType::Unknown {
            kind = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
                .map(|st| FileType::from_raw_mode(st.st_mode))
                .unwrap_or(FileType::Unknown);
        }
        out.push((name.to_os_string(), kind));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Writes `data` as `name` in `dir`: a temp file created there with `mode` (never readable by
/// others, not even briefly), written, chmod-ed exactly (the umask may have narrowed it),
/// fsynced, renamed over `name`. The rename replaces a link at `name` rather than writing
/// through it. The directory's fsync is the caller's.
pub(crate) fn replace_in(dir: &OwnedFd, name: &OsStr, data: &[u8], mode: u32) -> io::Result<()> {
    replace_in_with(dir, name, mode, &mut |f| f.write_all(data))
}

/// [`replace_in`] with the content produced by `fill` (a stream too large to hold in memory);
/// when `fill` fails the temp file is removed and `name` is untouched.
pub(crate) fn replace_in_with(
    dir: &OwnedFd,
    name: &OsStr,
    mode: u32,
    fill: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let mut tmp = None;
    for attempt in 0..16u32 {
        let mut candidate = OsString::from(".");
        candidate.push(name);
        candidate.push(format!(".tmp-{}-{attempt}", std::process::id()));
        match rfs::openat(
            dir,
            &candidate,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        ) {
            Ok(fd) => {
                tmp = Some((candidate, fd));
                break;
            }
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let (tmp_name, fd) = tmp.ok_or_else(|| {
        io::Error::new(io::ErrorKind::AlreadyExists, "no free temporary file name")
    })?;
    let result = (|| -> io::Result<()> {
        rfs::fchmod(&fd, Mode::from_raw_mode(mode))?;
        let mut file = std::fs::File::from(fd);
        fill(&mut file)?;
        file.sync_all()?;
        rfs::renameat(dir, &tmp_name, dir, name)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = rfs::unlinkat(dir, &tmp_name, AtFlags::empty());
    }
    result
}

/// fsync of a directory; file systems that cannot (EINVAL, ENOTSUP) give no stronger guarantee
/// to ask for, so those refusals are not errors.
pub(crate) fn sync_fd(dir: BorrowedFd<'_>) -> io::Result<()> {
    match rfs::fsync(dir) {
        Err(Errno::INVAL | Errno::NOTSUP) | Ok(()) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes everything inside an open directory, depth first, never following a link (a link
/// is removed as a name). Problems (busy mount point, read-only file system) are collected with
/// their host path; `shown` is the directory's host path.
pub(crate) fn remove_contents(dir: BorrowedFd<'_>, shown: &Path, problems: &mut Vec<String>) {
    let list = match entries(dir) {
        Ok(l) => l,
        Err(e) => {
            problems.push(format!("cannot list {}: {e}", shown.display()));
            return;
        }
    };
    for (name, kind) in list {
        let child = shown.join(&name);
        let result = if kind == FileType::Directory {
            match rfs::openat(
                dir,
                &name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(sub) => {
                    remove_contents(sub.as_fd(), &child, problems);
                    rfs::unlinkat(dir, &name, AtFlags::REMOVEDIR)
                }
                Err(e) => Err(e),
            }
        } else {
            rfs::unlinkat(dir, &name, AtFlags::empty())
        };
        if let Err(e) = result {
            problems.push(format!(
                "cannot remove {}: {}",
                child.display(),
                io::Error::from(e)
            ));
        }
    }
}

/// True for "no such file or directory".
pub(crate) fn is_not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

/// True for "a path component is not a directory".
pub(crate) fn is_not_dir(e: &io::Error) -> bool {
    e.raw_os_error() == Some(Errno::NOTDIR.raw_os_error())
}

#[cfg(test)]
mod tests;
