//! The `kubeadm` binary: parses the command line, runs the command, prints errors with hints.

mod apiclient;
mod cli;
mod commands;
mod container_runtime;
mod discovery;
mod dryrun_client;
mod error;
mod etcd_membership;
mod host;
mod phases;
mod pipe;
mod restart;
mod services;
mod timers;
mod waiter;

use kubeadm_errors::Hint;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command};
use crate::error::Error;

/// When set, the process prints its wall time split into waiting for other components and
/// its own work on stderr at exit (`scripts/bench-upgrade.sh` reads it).
const TIMINGS_VAR: &str = "KUBEADM_TIMINGS";

fn main() -> ExitCode {
    let started = std::time::Instant::now();
    let code = run_main();
    if std::env::var_os(TIMINGS_VAR).is_some() {
        let wall = started.elapsed();
        let waited = waiter::waited().min(wall);
        eprintln!(
            "[timings] wall {:.3}s waiting {:.3}s own {:.3}s",
            wall.as_secs_f64(),
            waited.as_secs_f64(),
            (wall - waited).as_secs_f64()
        );
    }
    code
}

fn run_main() -> ExitCode {
    pipe::install();
    let command = Cli::command()
        .mut_subcommand("init", |c| {
            phases::attach(
                c,
                &phases::init::init_workflow(),
                cli::InitArgs::augment_args,
            )
        })
        .mut_subcommand("join", |c| {
            phases::attach(
                c,
                &phases::join::join_workflow(),
                cli::JoinArgs::augment_args,
            )
        })
        .mut_subcommand("reset", |c| {
            phases::attach(
                c,
                &phases::reset::reset_workflow(),
                cli::ResetArgs::augment_args,
            )
        })
        .mut_subcommand("upgrade", commands::upgrade::with_phases);
    let matches = command.get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_logging(cli.verbosity);
    if let Some(root) = &cli.rootfs
        && let Err(e) = kubeadm_effects::check_root(root)
    {
        // Before anything else: a mistyped --rootfs must not become a new tree of files.
        print_error(&Error::from(e));
        return ExitCode::FAILURE;
    }
    match run(cli, &matches) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            print_error(&e);
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbosity: u8) {
    use std::io::IsTerminal;
    let level = match verbosity {
        0 => "warn",
        1..=4 => "info",
        5..=6 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KUBEADM_LOG").unwrap_or_else(|_| {
        if verbosity == 0 {
            // Libraries' own logs (kube's client retrying, rustls) only when -v asks for
            // them: our errors already say what failed, once, in words.
            let ours = OUR_CRATES
                .iter()
                .map(|c| format!("{c}=warn"))
                .collect::<Vec<_>>()
                .join(",");
            tracing_subscriber::EnvFilter::new(format!("off,{ours}"))
        } else {
            // kube's TLS layer warns on every unverified connection; discovery's first read
            // is unverified on purpose (the JWS and the CA pin are checked instead).
            tracing_subscriber::EnvFilter::new(format!("{level},kube_client::client::tls=error"))
        }
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into a log file or a pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// The crates of this project, whose warnings are shown without `-v`.
const OUR_CRATES: &[&str] = &[
    "kubeadm",
    "kubeadm_api",
    "kubeadm_cluster",
    "kubeadm_effects",
    "kubeadm_etcd",
    "kubeadm_pki",
    "kubeadm_preflight",
    "kubeadm_render",
    "kubeadm_workflow",
];

/// Prints `error: …`, each cause, and the hint, as the project's error style wants.
fn print_error(e: &Error) {
    eprintln!("error: {e}");
    let mut said = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        // One line per cause: skip a cause whose text a line above already contains (an OS
        // error is part of the "write <path>: …" line that wraps it).
        let text = s.to_string();
        if !said.iter().any(|line| line.contains(&text)) {
            eprintln!("  caused by: {text}");
            said.push(text);
        }
        source = s.source();
    }
    if let Some(hint) = e.hint() {
        eprintln!("hint: {hint}");
    }
}

fn run(cli: Cli, matches: &clap::ArgMatches) -> Result<(), Error> {
    let root = cli.rootfs.clone().unwrap_or_else(|| "/".into());
    let sub = |name: &str| matches.subcommand_matches(name).unwrap_or(matches);
    match cli.command {
        Command::Init(args) => phases::dispatch(sub("init"), args.as_ref(), |a, m, phase| {
            commands::init::run(&root, a, m, phase)
        }),
        Command::Join(args) => phases::dispatch(sub("join"), args.as_ref(), |a, m, phase| {
            commands::join::run(&root, a, m, phase)
        }),
        Command::Reset(args) => phases::dispatch(sub("reset"), &args, |a, m, phase| {
            commands::reset::run(&root, a, m, phase)
        }),
        Command::Config(c) => commands::config::run(&root, c),
        Command::Token(t) => commands::token::run(&root, t),
        Command::Certs(c) => commands::certs::run(&root, c),
        Command::Etcd(c) => commands::etcd::run(&root, c),
        Command::Host(h) => commands::host::run(&root, h),
        Command::Ha(h) => commands::ha::run(&root, h),
        Command::Kubeconfig(k) => commands::kubeconfig::run(&root, k),
        Command::Upgrade(u) => {
            commands::upgrade::run(&root, u, matches.subcommand_matches("upgrade"))
        }
        Command::Version(v) => commands::version::run(v),
        Command::Completion(c) => commands::completion::run(c),
    }
}
