//! Small commands: `token generate`, `certs certificate-key`, `completion`.

use clap::CommandFactory;

use crate::cli::{CertsCommand, Cli, CompletionArgs, Shell, TokenCommand};
use crate::error::{Error, Result};

/// `kubeadm token …`.
pub fn token(cmd: TokenCommand) -> Result<()> {
    match cmd {
        TokenCommand::Generate => {
            let t = kubeadm_api::BootstrapTokenString::generate().map_err(Error::msg)?;
            println!("{t}");
        }
        other => return crate::commands::token::run(std::path::Path::new("/"), other),
    }
    Ok(())
}

/// `kubeadm certs …`.
pub fn certs(root: &std::path::Path, cmd: CertsCommand) -> Result<()> {
    match cmd {
        CertsCommand::CheckExpiration(a) => super::certs::check_expiration(root, a)?,
        CertsCommand::Renew(a) => super::certs::renew(root, a)?,
        CertsCommand::GenerateCsr(a) => super::certs::generate_csr(root, a)?,
        CertsCommand::CertificateKey => println!(
            "{}",
            kubeadm_api::token::generate_certificate_key().map_err(Error::msg)?
        ),
    }
    Ok(())
}

/// `kubeadm completion SHELL`.
pub fn completion(args: CompletionArgs) -> Result<()> {
    let mut cmd = Cli::command();
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "kubeadm", &mut std::io::stdout());
    Ok(())
}
