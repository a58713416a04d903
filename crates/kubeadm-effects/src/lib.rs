//! Every side effect of kubeadm-rs goes through [`Effects`]: reading and writing host files
//! (resolved under a root, written atomically with kubeadm's modes) and running host commands.
//!
//! Two implementations share the interface: [`RealEffects`] changes the host, [`DryRunEffects`]
//! reads the host but records and prints every change instead of making it. Phases cannot tell
//! them apart, so `--dry-run` runs exactly the code a real run does.

mod dryrun;
mod inroot;
pub mod poll;
mod real;
mod rooted;

use std::path::{Path, PathBuf};

pub use dryrun::{Action, DryRunEffects};
pub use real::RealEffects;
pub use rooted::{INPUT_LIMIT, check_root, read_input, resolve, write_atomic};

/// What a file holds, and how much of it may be shown.
#[derive(Clone, PartialEq, Eq)]
pub enum Content {
    /// Public content: dry-run prints it in full.
    Plain(Vec<u8>),
    /// A private key or similar: dry-run prints only the path and `what` (e.g. "RSA-2048 private key").
    Secret {
        /// The bytes.
        data: Vec<u8>,
        /// What it is, without revealing it.
        what: String,
    },
    /// Content with secrets inside (a kubeconfig with a client key): dry-run prints `shown`.
    Redacted {
        /// The bytes.
        data: Vec<u8>,
        /// A rendering with the secret parts replaced.
        shown: String,
    },
}

impl Content {
    /// The bytes to write.
    pub fn data(&self) -> &[u8] {
        match self {
            Content::Plain(d)
            | Content::Secret { data: d, .. }
            | Content::Redacted { data: d, .. } => d,
        }
    }
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Content::Plain(d) => write!(f, "Plain({} bytes)", d.len()),
            Content::Secret { what, .. } => write!(f, "Secret({what})"),
            Content::Redacted { data, .. } => write!(f, "Redacted({} bytes)", data.len()),
        }
    }
}

/// A failed effect, naming the host path or command.
#[derive(Debug, thiserror::Error)]
pub enum EffectError {
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("write", "read", …).
        op: &'static str,
        /// The host path (as the operator knows it, not the rooted one).
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A path is not an absolute path naming a file.
    #[error("refusing path {0}: host paths must be absolute and name a file")]
    BadPath(PathBuf),
    /// A file named on the command line cannot be used as input.
    #[error("{}: {problem}", path.display())]
    Input {
        /// The file as given.
        path: PathBuf,
        /// Why not.
        problem: String,
    },
    /// The root (`--rootfs`) cannot be used.
    #[error("--rootfs {}: {source}; give an existing directory", root.display())]
    BadRoot {
        /// The root as given.
        root: PathBuf,
        /// Why it cannot be used.
        #[source]
        source: std::io::Error,
    },
    /// A command could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl kubeadm_errors::Hint for EffectError {
    fn hint(&self) -> Option<String> {
        match self {
            EffectError::BadRoot { .. } => Some(
                "create the directory first, or correct the --rootfs path (nothing was written)"
                    .into(),
            ),
            EffectError::Input { .. } => Some("give a regular YAML file of at most 4 MiB".into()),
            // Whether being root would help is the caller's knowledge (the binary adds it).
            _ => None,
        }
    }
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOutput {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CommandOutput {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Whether a command changes the host (dry-run records it instead of running it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    /// Only asks (e.g. `systemctl is-active kubelet`): run in dry-run too.
    Query,
    /// Changes the host (e.g. `systemctl restart kubelet`): recorded in dry-run.
    Mutate,
}

/// The side-effect interface phases use. Paths are host paths (`/etc/kubernetes/...`),
/// resolved under [`Effects::root`].
pub trait Effects: Send + Sync {
    /// The root host paths are resolved under (`/` unless `--rootfs`).
    fn root(&self) -> &Path;

    /// True for the recording implementation.
    fn is_dry_run(&self) -> bool;

    /// Reads a file; `Ok(None)` when it does not exist.
    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, EffectError>;

    /// True when the path exists (file, directory or socket).
    fn exists(&self, path: &Path) -> bool;

    /// Names of the entries of a directory (empty when it does not exist).
    fn list_dir(&self, path: &Path) -> Result<Vec<String>, EffectError>;

    /// Writes a file atomically (temp file, fsync, rename) with `mode`, creating parents 0755.
    /// Readers see the old or the new content, never a mix; the new name is durable after the
    /// next [`Effects::sync`].
    fn write_file(&self, path: &Path, content: Content, mode: u32) -> Result<(), EffectError>;

    /// Makes every file written so far durable (fsyncs the directories that received new
    /// names). Called at the end of a command; dropping the effects layer does it too.
    fn sync(&self) -> Result<(), EffectError> {
        Ok(())
    }

    /// Writes a file atomically like [`Effects::write_file`], its content produced by `fill`
    /// into the temp file (a stream too large to hold in memory, such as an etcd snapshot). If
    /// `fill` fails, nothing is left behind and the target keeps its old content. The recording
    /// twin does not call `fill`: it records a write of `what`.
    fn write_with(
        &self,
        path: &Path,
        mode: u32,
        what: &str,
        fill: &mut dyn FnMut(&mut dyn std::io::Write) -> std::io::Result<()>,
    ) -> Result<(), EffectError>;

    /// Renames a file or directory (both host paths under the root); refuses to replace an
    /// existing `to`, so nothing is ever lost by a move.
    fn rename(&self, from: &Path, to: &Path) -> Result<(), EffectError>;

    /// Creates a directory and its parents with `mode`.
    fn create_dir_all(&self, path: &Path, mode: u32) -> Result<(), EffectError>;

    /// Removes a file (absent is fine).
    fn remove_file(&self, path: &Path) -> Result<(), EffectError>;

    /// Removes an empty directory (absent is fine).
    fn remove_dir(&self, path: &Path) -> Result<(), EffectError>;

    /// Removes everything inside a directory, keeping the directory itself (absent is fine).
    /// Symbolic links are removed, never followed, so nothing outside the directory is touched.
    /// Entries that cannot be removed (read-only file system, busy mount point) are returned as
    /// problems rather than failing the whole call.
    fn remove_dir_contents(&self, path: &Path) -> Result<Vec<String>, EffectError>;

    /// Runs a host command.
    fn run(
        &self,
        kind: CommandKind,
        program: &str,
        args: &[&str],
    ) -> Result<CommandOutput, EffectError>;

    /// A message for the operator about something not done (dry-run prints it, a real run logs it).
    fn note(&self, message: &str);

    /// Waits until `ready` answers true (a health probe, a file appearing), for at most
    /// `timeout`, through [`poll::poll_until`]; the time it took, or `None` when it ran out.
    /// The dry-run twin probes nothing: it says what it would wait for and answers at once.
    fn wait_until(
        &self,
        what: &str,
        timeout: std::time::Duration,
        ready: &mut dyn FnMut() -> bool,
    ) -> Option<std::time::Duration> {
        let _ = what;
        poll::poll_until(timeout, ready)
    }

    /// Reads a file as UTF-8 text; `Ok(None)` when absent.
    fn read_to_string(&self, path: &Path) -> Result<Option<String>, EffectError> {
        match self.read(path)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|e| EffectError::Io {
                    op: "read",
                    path: path.to_path_buf(),
                    // In words, not the library's "invalid utf-8 sequence of 1 bytes from index 1".
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "not a text file (invalid UTF-8 at byte {})",
                            e.utf8_error().valid_up_to()
                        ),
                    ),
                }),
        }
    }
}
