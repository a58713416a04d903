//! One module per command: each turns parsed flags into options and runs the command.

pub mod certs;
pub mod certs_auto;
pub mod completion;
pub mod config;
pub mod etcd;
pub mod ha;
pub mod host;
pub mod images;
pub mod init;
pub mod join;
pub mod kubeconfig;
pub mod reset;
pub mod token;
pub mod upgrade;
pub mod version;

use std::path::Path;

use clap::ArgMatches;
use clap::parser::ValueSource;
use kubeadm_api::decode::{self, Documents};

use crate::error::{Error, Result};

/// Reads and strictly decodes a configuration file named on the command line.
pub fn read_config(path: &Path) -> Result<Documents> {
    let text = read_input_text(path)?;
    Ok(decode::decode(&path.display().to_string(), &text)?)
}

/// Reads a text file named on the command line: a regular file of at most
/// [`kubeadm_effects::INPUT_LIMIT`] bytes, in UTF-8. Errors name the file.
pub fn read_input_text(path: &Path) -> Result<String> {
    let bytes = kubeadm_effects::read_input(path, kubeadm_effects::INPUT_LIMIT)?;
    String::from_utf8(bytes).map_err(|e| {
        Error::with_hint(
            format!(
                "{} is not a text file (invalid UTF-8 at byte {})",
                path.display(),
                e.utf8_error().valid_up_to()
            ),
            "give a YAML file (UTF-8 text)",
        )
    })
}

/// Flags that may be combined with `--config` (upstream `isAllowedFlag`): these and every
/// `--skip-*` flag.
const ALLOWED_WITH_CONFIG: &[&str] = &[
    "config",
    "ignore-preflight-errors",
    "dry-run",
    "kubeconfig",
    "node-name",
    "kubeconfig-dir",
    "upload-certs",
    "print-join-command",
    "rootfs",
    "v",
    "log-file",
    // Ours: it overrides the file's ControlPlaneConfiguration.
    "control-plane-mode",
];

/// Rejects flags given together with `--config` that upstream rejects, naming them.
pub fn check_mixed_flags(matches: &ArgMatches) -> Result<()> {
    if matches.value_source("config") != Some(ValueSource::CommandLine) {
        return Ok(());
    }
    let mut mixed: Vec<String> = matches
        .ids()
        // clap's derive adds a group named after each Args struct ("InitArgs"); only flags count.
        .filter(|id| !id.as_str().starts_with(char::is_uppercase))
        .filter(|id| matches.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        .map(|id| id.as_str().replace('_', "-"))
        .filter(|name| !ALLOWED_WITH_CONFIG.contains(&name.as_str()) && !name.starts_with("skip-"))
        .collect();
    mixed.sort();
    if mixed.is_empty() {
        Ok(())
    } else {
        Err(kubeadm_api::ConfigError::MixedFlags(mixed).into())
    }
}

/// Parses `--feature-gates a=true,b=false`.
pub fn parse_feature_gates(s: &str) -> Result<std::collections::BTreeMap<String, bool>> {
    let mut out = std::collections::BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| flag_error("feature-gates", part, "expected key=true|false"))?;
        let v = v
            .parse::<bool>()
            .map_err(|_| flag_error("feature-gates", part, "the value must be true or false"))?;
        out.insert(k.trim().to_string(), v);
    }
    Ok(out)
}

/// An error about one flag's value.
pub fn flag_error(flag: &str, value: &str, message: &str) -> Error {
    kubeadm_api::ConfigError::Flag {
        flag: flag.into(),
        value: value.into(),
        message: message.into(),
    }
    .into()
}

/// In debug builds (the tests' binary), `KUBEADM_TEST_KILL_AT=<command>/<phase path>` (e.g.
/// `init/kubeconfig/admin`) makes the process SIGKILL itself right before that phase runs, that
/// is right after the phase before it completed: the crash-recovery tests stop `init` and
/// `reset` at exact phase boundaries with it. Release builds ignore it.
pub const KILL_AT_VAR: &str = "KUBEADM_TEST_KILL_AT";

/// Called by every phase runner before each phase: logs it, and is where [`KILL_AT_VAR`] acts.
pub fn on_phase(command: &str, path: &str) {
    tracing::info!(phase = path, "running phase");
    kill_point(command, path);
}

/// Where [`KILL_AT_VAR`] stops the process: before a phase (`<command>/<phase path>`), or at a
/// point inside one, `<command>/<phase path>:<step>` (reset's cleanup-node before each removal,
/// e.g. `reset/cleanup-node:/var/lib/kubelet`), so a crash between two removals is tested too.
pub fn kill_point(command: &str, point: &str) {
    if cfg!(debug_assertions)
        && std::env::var(KILL_AT_VAR).is_ok_and(|v| v == format!("{command}/{point}"))
    {
        use std::io::Write;
        // What was printed so far is what an operator would have seen before the crash.
        let _ = std::io::stdout().flush();
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    }
}

/// Turns a workflow failure into the binary's error: upstream's "error execution phase <path>"
/// with the phase's own error as the cause, or a pointer to the command's phase list.
pub fn workflow_error(e: kubeadm_workflow::WorkflowError<Error>, command: &str) -> Error {
    match e {
        kubeadm_workflow::WorkflowError::Phase { path, source } => {
            Error::Workflow(format!("error execution phase {path}"), Box::new(source))
        }
        other => Error::with_hint(
            other.to_string(),
            format!("run `kubeadm {command} --help` to list the phases"),
        ),
    }
}
