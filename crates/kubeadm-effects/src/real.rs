//! The implementation that changes the host.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::rooted::{create_dirs, resolve, write_atomic};
use crate::{CommandKind, CommandOutput, Content, EffectError, Effects};

/// Reads and writes the host under `root`.
#[derive(Debug, Clone)]
pub struct RealEffects {
    root: PathBuf,
}

impl RealEffects {
    /// Effects on the host below `root` (`/` for the real host).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RealEffects { root: root.into() }
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
        write_atomic(&real, content.data(), mode, path)?;
        tracing::debug!(path = %path.display(), mode = format_args!("{mode:04o}"), "wrote file");
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

    fn run(
        &self,
        _kind: CommandKind,
        program: &str,
        args: &[&str],
    ) -> Result<CommandOutput, EffectError> {
        run_command(program, args)
    }

    fn note(&self, message: &str) {
        tracing::info!("{message}");
    }
}
