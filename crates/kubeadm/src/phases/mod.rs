//! The phase trees of the commands, as data (one folder per command, one file per top-level
//! phase), and the `<command> phase …` sub-commands generated from them.

pub mod init;
pub mod join;
pub mod reset;

use clap::{ArgMatches, Command};
use kubeadm_workflow::{Phase, Workflow};

use crate::error::Error;

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
