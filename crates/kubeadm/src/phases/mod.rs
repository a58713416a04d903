//! The phase trees of the commands, as data (one folder per command, one file per top-level
//! phase), and the one builder that turns any tree into `<command> phase …` sub-commands and
//! the `--help` phase list, plus the one dispatcher that finds the selected phase again.

pub mod init;
pub mod join;
pub mod reset;
pub mod upgrade;

use clap::{ArgMatches, Command, FromArgMatches};
use kubeadm_workflow::{Phase, Workflow};

use crate::error::{Error, Result};

/// Adds `phase` (one sub-command per phase, `all` for groups) to a command and the phase list
/// to its long help. `augment` adds the command's flags (e.g. `InitArgs::augment_args`); each
/// phase's sub-command shows only the flags that phase uses (the others stay accepted, hidden,
/// so that one set of parsed arguments serves every phase).
pub fn attach<C>(
    command: Command,
    workflow: &Workflow<C, Error>,
    augment: fn(Command) -> Command,
) -> Command {
    let name = workflow.command;
    let mut phase = Command::new("phase")
        .about(format!(
            "Use this command to invoke single phase of the {name} workflow"
        ))
        .subcommand_required(true);
    for p in &workflow.phases {
        phase = phase.subcommand(phase_command(p, augment));
    }
    command.subcommand(phase).after_long_help(workflow.help())
}

/// The sub-command of one phase, with its children (and `all` for a group).
fn phase_command<C>(p: &Phase<C, Error>, augment: fn(Command) -> Command) -> Command {
    let flags = p.all_flags();
    let mut c = only_flags(augment(Command::new(p.name)), flags.as_deref()).about(p.short);
    if let Some(long) = &p.long {
        c = c.long_about(long.clone());
    }
    for a in p.aliases {
        c = c.alias(*a);
    }
    if !p.children.is_empty() {
        if p.run_all_siblings {
            c = c.subcommand(
                only_flags(augment(Command::new("all")), flags.as_deref())
                    .about("Run all the sub-phases"),
            );
        }
        for child in &p.children {
            c = c.subcommand(phase_command(child, augment));
        }
    }
    c
}

/// Hides every flag not in `flags` (`None`: shows them all). Positional arguments stay.
fn only_flags(command: Command, flags: Option<&[&'static str]>) -> Command {
    let Some(flags) = flags else {
        return command;
    };
    command.mut_args(|a| match a.get_long() {
        Some(long) if !flags.contains(&long) => a.hide(true),
        _ => a,
    })
}

/// For `<command> phase a b`, the selected phase path (`a/b`; `a` for `a all`) and the innermost
/// matches, which hold the flags.
pub fn selected_phase(matches: &ArgMatches) -> Option<(String, &ArgMatches)> {
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

/// Runs a command with phases: the whole workflow, or (for `<command> phase …`) the selected
/// phase with the flags given after it. `matches` are the command's own matches.
pub fn dispatch<A: FromArgMatches>(
    matches: &ArgMatches,
    args: &A,
    run: impl FnOnce(&A, &ArgMatches, Option<&str>) -> Result<()>,
) -> Result<()> {
    match selected_phase(matches) {
        Some((path, phase_matches)) => {
            let args = A::from_arg_matches(phase_matches).map_err(|e| Error::msg(e.to_string()))?;
            run(&args, phase_matches, Some(&path))
        }
        None => run(args, matches, None),
    }
}

#[cfg(test)]
mod tests {
    use clap::Args;

    use super::*;
    use crate::cli::{InitArgs, JoinArgs, ResetArgs};

    /// Every flag a phase names is one of its command's flags (a typo would hide nothing and
    /// show nothing), and every phase of the three trees names its flags.
    fn check<C>(workflow: &Workflow<C, Error>, augment: fn(Command) -> Command) {
        let command = augment(Command::new("x"));
        let known: Vec<&str> = command
            .get_arguments()
            .filter_map(|a| a.get_long())
            .collect();
        for fp in workflow.flatten() {
            let flags = fp
                .phase
                .all_flags()
                .unwrap_or_else(|| panic!("{} phase {} lists no flags", workflow.command, fp.path));
            for f in flags {
                assert!(
                    known.contains(&f),
                    "{} phase {}: no flag --{f}",
                    workflow.command,
                    fp.path
                );
            }
        }
    }

    #[test]
    fn phase_flags_are_command_flags() {
        check(&init::init_workflow(), InitArgs::augment_args);
        check(&join::join_workflow(), JoinArgs::augment_args);
        check(&reset::reset_workflow(), ResetArgs::augment_args);
    }

    #[test]
    fn a_phase_shows_only_its_flags_and_accepts_the_others() {
        let init = attach(
            Command::new("init"),
            &init::init_workflow(),
            InitArgs::augment_args,
        );
        let phase = init.find_subcommand("phase").unwrap();
        let upload = phase.find_subcommand("upload-certs").unwrap();
        let mut shown: Vec<&str> = upload
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long())
            .collect();
        shown.sort();
        assert_eq!(
            shown,
            [
                "certificate-key",
                "config",
                "dry-run",
                "skip-certificate-key-print",
                "upload-certs"
            ]
        );
        // A hidden flag still parses, so the phase reads the same arguments as init.
        let m = init
            .try_get_matches_from([
                "init",
                "phase",
                "upload-certs",
                "--pod-network-cidr",
                "10.0.0.0/16",
            ])
            .unwrap();
        let (path, pm) = selected_phase(&m).unwrap();
        assert_eq!(path, "upload-certs");
        let args = InitArgs::from_arg_matches(pm).unwrap();
        assert_eq!(args.pod_network_cidr.as_deref(), Some("10.0.0.0/16"));
    }
}
