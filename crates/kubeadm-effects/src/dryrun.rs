//! The recording implementation behind `--dry-run`.
//!
//! Reads go to the host (under the root) unless an earlier step of the same run "wrote" the path,
//! in which case the recorded content is returned: later phases see what earlier phases would
//! have written (the kubeconfig phase reads the CA the certs phase generated), yet nothing is
//! written. Every change is printed as it happens and kept as an [`Action`] for tests.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::inroot::Resolver;
use crate::real::{
    check_dirs, dir_to_empty, exists_rooted, list_rooted, open_root, read_rooted, run_command,
};
use crate::{CommandKind, CommandOutput, Content, EffectError, Effects};

/// One change a dry run would have made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A file write.
    WriteFile {
        /// Host path.
        path: PathBuf,
        /// File mode.
        mode: u32,
        /// What would be written.
        content: Content,
    },
    /// A directory creation.
    CreateDir {
        /// Host path.
        path: PathBuf,
        /// Directory mode.
        mode: u32,
    },
    /// A file removal.
    RemoveFile {
        /// Host path.
        path: PathBuf,
    },
    /// Removing an empty directory.
    RemoveDir {
        /// Host path.
        path: PathBuf,
    },
    /// Emptying a directory.
    RemoveDirContents {
        /// Host path.
        path: PathBuf,
        /// The entries that would go.
        entries: Vec<String>,
    },
    /// A rename (a move inside the root).
    Rename {
        /// Host path before.
        from: PathBuf,
        /// Host path after.
        to: PathBuf,
    },
    /// A host command.
    Run {
        /// Program and arguments.
        command: Vec<String>,
    },
    /// Something said instead of done.
    Note(String),
}

/// The dry run resolves paths as the real run does.
const RESOLVER: Resolver = Resolver::Kernel;

/// Records and prints changes instead of making them.
pub struct DryRunEffects {
    root: PathBuf,
    overlay: Mutex<BTreeMap<PathBuf, Option<Vec<u8>>>>,
    actions: Mutex<Vec<Action>>,
    out: Mutex<Box<dyn Write + Send>>,
}

impl DryRunEffects {
    /// A recorder reading the host below `root` and printing to `out`.
    pub fn new(root: impl Into<PathBuf>, out: Box<dyn Write + Send>) -> Self {
        DryRunEffects {
            root: root.into(),
            overlay: Mutex::new(BTreeMap::new()),
            actions: Mutex::new(Vec::new()),
            out: Mutex::new(out),
        }
    }

    /// Every recorded change, in order.
    pub fn actions(&self) -> Vec<Action> {
        self.actions.lock().map(|a| a.clone()).unwrap_or_default()
    }

    fn record(&self, action: Action) {
        let text = render(&action);
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
        if let Ok(mut a) = self.actions.lock() {
            a.push(action);
        }
    }

    fn overlaid(&self, path: &Path) -> Option<Option<Vec<u8>>> {
        self.overlay.lock().ok().and_then(|o| o.get(path).cloned())
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("\t{l}\n")).collect()
}

/// How an action is printed.
pub fn render(action: &Action) -> String {
    match action {
        Action::WriteFile {
            path,
            mode,
            content,
        } => match content {
            Content::Plain(data) => match std::str::from_utf8(data) {
                Ok(text) => format!(
                    "[dryrun] Would write file {:?} with mode {mode:04o} and content:\n{}",
                    path.display().to_string(),
                    indent(text)
                ),
                Err(_) => format!(
                    "[dryrun] Would write file {:?} with mode {mode:04o} ({} bytes of binary content)\n",
                    path.display().to_string(),
                    data.len()
                ),
            },
            Content::Secret { what, .. } => format!(
                "[dryrun] Would write {what} to {:?} with mode {mode:04o} (content not shown)\n",
                path.display().to_string()
            ),
            Content::Redacted { shown, .. } => format!(
                "[dryrun] Would write file {:?} with mode {mode:04o} and content (secrets redacted):\n{}",
                path.display().to_string(),
                indent(shown)
            ),
        },
        Action::CreateDir { path, mode } => format!(
            "[dryrun] Would create directory {:?} with mode {mode:04o}\n",
            path.display().to_string()
        ),
        Action::RemoveFile { path } => format!(
            "[dryrun] Would remove file {:?}\n",
            path.display().to_string()
        ),
        Action::RemoveDir { path } => format!(
            "[dryrun] Would remove directory {:?}\n",
            path.display().to_string()
        ),
        Action::RemoveDirContents { path, entries } => format!(
            "[dryrun] Would remove the contents of {:?}: {}\n",
            path.display().to_string(),
            if entries.is_empty() {
                "(already empty)".to_string()
            } else {
                entries.join(", ")
            }
        ),
        Action::Rename { from, to } => format!(
            "[dryrun] Would move {:?} to {:?}\n",
            from.display().to_string(),
            to.display().to_string()
        ),
        Action::Run { command } => format!("[dryrun] Would run: {}\n", command.join(" ")),
        Action::Note(n) => format!("[dryrun] {n}\n"),
    }
}

impl Effects for DryRunEffects {
    fn root(&self) -> &Path {
        &self.root
    }

    fn is_dry_run(&self) -> bool {
        true
    }

    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, EffectError> {
        open_root(&self.root, RESOLVER, path)?;
        match self.overlaid(path) {
            Some(v) => Ok(v),
            None => read_rooted(&self.root, RESOLVER, path),
        }
    }

    fn exists(&self, path: &Path) -> bool {
        match self.overlaid(path) {
            Some(v) => v.is_some(),
            None => exists_rooted(&self.root, RESOLVER, path),
        }
    }

    fn list_dir(&self, path: &Path) -> Result<Vec<String>, EffectError> {
        let mut names = list_rooted(&self.root, RESOLVER, path)?;
        if let Ok(o) = self.overlay.lock() {
            for (p, v) in o.iter() {
                if p.parent() == Some(path) {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    match v {
                        Some(_) if !names.contains(&name) => names.push(name),
                        None => names.retain(|n| *n != name),
                        _ => {}
                    }
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn write_file(&self, path: &Path, content: Content, mode: u32) -> Result<(), EffectError> {
        // The checks the real write makes before it changes anything, so that the dry run
        // fails where the real run would.
        match (path.parent(), path.file_name()) {
            (Some(parent), Some(_)) => check_dirs(&self.root, RESOLVER, parent, "write", path)?,
            _ => return Err(EffectError::BadPath(path.to_path_buf())),
        }
        if let Ok(mut o) = self.overlay.lock() {
            o.insert(path.to_path_buf(), Some(content.data().to_vec()));
        }
        self.record(Action::WriteFile {
            path: path.to_path_buf(),
            mode,
            content,
        });
        Ok(())
    }

    fn write_with(
        &self,
        path: &Path,
        mode: u32,
        what: &str,
        _fill: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<(), EffectError> {
        match (path.parent(), path.file_name()) {
            (Some(parent), Some(_)) => check_dirs(&self.root, RESOLVER, parent, "write", path)?,
            _ => return Err(EffectError::BadPath(path.to_path_buf())),
        }
        self.record(Action::WriteFile {
            path: path.to_path_buf(),
            mode,
            content: Content::Secret {
                data: Vec::new(),
                what: what.to_string(),
            },
        });
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<(), EffectError> {
        open_root(&self.root, RESOLVER, from)?;
        if let Some(parent) = to.parent() {
            check_dirs(&self.root, RESOLVER, parent, "rename", to)?;
        }
        if self.exists(to) {
            return Err(EffectError::Io {
                op: "rename",
                path: from.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("{} already exists", to.display()),
                ),
            });
        }
        // Later steps of the run see the file at its new place.
        let moved = self.read(from).ok().flatten();
        if let Ok(mut o) = self.overlay.lock() {
            o.insert(from.to_path_buf(), None);
            if moved.is_some() {
                o.insert(to.to_path_buf(), moved);
            }
        }
        self.record(Action::Rename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
        });
        Ok(())
    }

    fn create_dir_all(&self, path: &Path, mode: u32) -> Result<(), EffectError> {
        check_dirs(&self.root, RESOLVER, path, "create directory", path)?;
        self.record(Action::CreateDir {
            path: path.to_path_buf(),
            mode,
        });
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> Result<(), EffectError> {
        open_root(&self.root, RESOLVER, path)?;
        if let Ok(mut o) = self.overlay.lock() {
            o.insert(path.to_path_buf(), None);
        }
        self.record(Action::RemoveFile {
            path: path.to_path_buf(),
        });
        Ok(())
    }

    fn remove_dir(&self, path: &Path) -> Result<(), EffectError> {
        open_root(&self.root, RESOLVER, path)?;
        self.record(Action::RemoveDir {
            path: path.to_path_buf(),
        });
        Ok(())
    }

    fn remove_dir_contents(&self, path: &Path) -> Result<Vec<String>, EffectError> {
        // The same resolution and the same refusal as the real run: what is listed here is
        // exactly what the real run would remove.
        if let Err(problem) = dir_to_empty(&self.root, RESOLVER, path)? {
            return Ok(vec![problem]);
        }
        let entries = self.list_dir(path)?;
        if let Ok(mut o) = self.overlay.lock() {
            for e in &entries {
                o.insert(path.join(e), None);
            }
        }
        self.record(Action::RemoveDirContents {
            path: path.to_path_buf(),
            entries,
        });
        Ok(Vec::new())
    }

    fn run(
        &self,
        kind: CommandKind,
        program: &str,
        args: &[&str],
    ) -> Result<CommandOutput, EffectError> {
        match kind {
            CommandKind::Query => run_command(program, args),
            CommandKind::Mutate => {
                let mut command = vec![program.to_string()];
                command.extend(args.iter().map(|a| a.to_string()));
                self.record(Action::Run { command });
                Ok(CommandOutput {
                    code: Some(0),
                    ..Default::default()
                })
            }
        }
    }

    fn note(&self, message: &str) {
        self.record(Action::Note(message.to_string()));
    }

    fn wait_until(
        &self,
        what: &str,
        _timeout: std::time::Duration,
        _ready: &mut dyn FnMut() -> bool,
    ) -> Option<std::time::Duration> {
        self.record(Action::Note(format!("Would wait for {what}")));
        Some(std::time::Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_without_writing_and_reads_back_its_own_writes() {
        let dir = tempfile::tempdir().unwrap();
        let fx = DryRunEffects::new(dir.path(), Box::new(std::io::sink()));
        let p = Path::new("/etc/kubernetes/pki/ca.key");
        fx.write_file(
            p,
            Content::Secret {
                data: b"k".to_vec(),
                what: "RSA-2048 private key".into(),
            },
            0o600,
        )
        .unwrap();
        assert_eq!(fx.read(p).unwrap(), Some(b"k".to_vec()));
        assert!(fx.exists(p));
        assert_eq!(
            fx.list_dir(Path::new("/etc/kubernetes/pki")).unwrap(),
            vec!["ca.key"]
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing written"
        );
        let text = render(&fx.actions()[0]);
        assert!(text.contains("ca.key") && text.contains("RSA-2048 private key"));
        assert!(
            !text.contains("\tk"),
            "key content must not be printed: {text}"
        );
    }

    #[test]
    fn mutating_commands_are_recorded_not_run() {
        let dir = tempfile::tempdir().unwrap();
        let fx = DryRunEffects::new(dir.path(), Box::new(std::io::sink()));
        let out = fx
            .run(
                CommandKind::Mutate,
                "/nonexistent/systemctl",
                &["restart", "kubelet"],
            )
            .unwrap();
        assert!(out.success());
        assert_eq!(
            fx.actions(),
            vec![Action::Run {
                command: vec![
                    "/nonexistent/systemctl".into(),
                    "restart".into(),
                    "kubelet".into()
                ]
            }]
        );
    }
}
