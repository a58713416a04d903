//! The phase trees of the commands, as data, and the `<command> phase …` sub-commands generated
//! from them. Each phase's logic lives in its own module below.

pub mod join;
pub mod preflight;
pub mod reset;

use clap::{ArgMatches, Command};
use kubeadm_api::config::InitConfig;
use kubeadm_effects::Effects;
use kubeadm_workflow::{Phase, Workflow};

pub mod certs;
pub mod kubeconfig;

use crate::error::Error;

pub mod api_phases;
pub mod cluster_api;
pub mod kubelet_finalize;
pub mod staticpods;
pub mod wait_control_plane;

/// Command-line choices of `kubeadm init` that are not part of the configuration.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// `--dry-run` (or `dryRun: true` in the file).
    pub dry_run: bool,
    /// `--upload-certs`.
    pub upload_certs: bool,
    /// `--skip-token-print`.
    pub skip_token_print: bool,
    /// `--skip-certificate-key-print`.
    pub skip_certificate_key_print: bool,
    /// `--ignore-preflight-errors` (or the file's list).
    pub ignore_preflight_errors: Vec<String>,
}

/// What init phases see: the resolved configuration, the effects layer and the options.
pub struct InitContext {
    /// The resolved configuration.
    pub cfg: InitConfig,
    /// Every side effect goes through here.
    pub fx: Box<dyn Effects>,
    /// Command-line options.
    pub opts: InitOptions,
    /// The API client of this run, made by the first API phase and reused by the others.
    pub api: Option<api_phases::ApiSession>,
}

impl InitContext {
    /// A context for running init phases (also used by `kubeadm join --control-plane`, which runs
    /// the certs, kubeconfig and control-plane phases with a configuration built from the cluster's).
    pub fn new(cfg: InitConfig, fx: Box<dyn Effects>, opts: InitOptions) -> Self {
        InitContext {
            cfg,
            fx,
            opts,
            api: None,
        }
    }
}

/// The `kubeadm init` phase tree, in upstream order. Phases are added here as they are
/// implemented; the help and `init phase` sub-commands follow automatically.
pub fn init_workflow() -> Workflow<InitContext, Error> {
    Workflow {
        command: "init",
        phases: {
            // Upstream order (1.28+): the files first, then the conversation with the API server.
            let mut phases = vec![
                Phase::leaf("preflight", "Run pre-flight checks", preflight::run),
                certs::phase(),
                kubeconfig::phase(),
                staticpods::etcd_phase(),
                staticpods::control_plane_phase(),
                staticpods::kubelet_start_phase(),
            ];
            phases.extend(api_phases::phases());
            phases
        },
    }
}

/// Builds `<command> phase` with one sub-command per phase (and `all` for groups), each taking
/// the command's flags (`augment` adds them, e.g. `InitArgs::augment_args`).
pub fn phase_command<C>(
    workflow: &Workflow<C, Error>,
    command: &str,
    augment: fn(Command) -> Command,
) -> Command {
    let build_one = |name: &'static str| augment(Command::new(name));
    fn build<C>(
        p: &Phase<C, Error>,
        augment: fn(Command) -> Command,
        make: &dyn Fn(&'static str) -> Command,
    ) -> Command {
        let mut c = make(p.name).about(p.short);
        for a in p.aliases {
            c = c.alias(*a);
        }
        if !p.children.is_empty() {
            if p.run_all_siblings {
                c = c.subcommand(augment(Command::new("all")).about("Run all the sub-phases"));
            }
            for child in &p.children {
                c = c.subcommand(build(child, augment, make));
            }
        }
        c
    }
    let mut phase = Command::new("phase")
        .about(format!(
            "Use this command to invoke single phase of the {command} workflow"
        ))
        .subcommand_required(true);
    for p in &workflow.phases {
        phase = phase.subcommand(build(p, augment, &build_one));
    }
    phase
}

/// For `<command> phase a b`, the selected phase path (`a/b`; `a` for `a all`) and the innermost
/// matches, which hold the flags.
pub fn selected_phase<'a>(
    matches: &'a ArgMatches,
    _command: &str,
) -> Option<(String, &'a ArgMatches)> {
    let (_, mut current) = matches.subcommand().filter(|(n, _)| *n == "phase")?;
    let mut path: Vec<String> = Vec::new();
    while let Some((name, sub)) = current.subcommand() {
        if name != "all" {
            path.push(name.to_string());
        }
        current = sub;
    }
    (!path.is_empty()).then(|| (path.join("/"), current))
}
