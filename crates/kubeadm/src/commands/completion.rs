//! `kubeadm completion bash|zsh|fish`.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionArgs, Shell};
use crate::error::Result;

/// `kubeadm completion SHELL`.
pub fn run(args: CompletionArgs) -> Result<()> {
    let mut cmd = Cli::command();
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "kubeadm", &mut std::io::stdout());
    Ok(())
}
