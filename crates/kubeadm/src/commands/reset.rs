//! `kubeadm reset`.

use std::path::Path;

use clap::ArgMatches;
use kubeadm_api::v1beta4::ResetConfiguration;
use kubeadm_api::{ConfigError, defaults, validate};

use super::{check_mixed_flags, read_config};
use crate::cli::ResetArgs;
use crate::error::Result;
use crate::phases::reset::{ResetContext, ResetOptions, ask_stdin, reset_workflow};

/// Resolves the ResetConfiguration from `--config` and flags.
pub fn load(args: &ResetArgs, matches: &ArgMatches) -> Result<ResetConfiguration> {
    check_mixed_flags(matches)?;
    let (mut cfg, file) = match &args.config {
        Some(p) => (
            read_config(p)?.reset.unwrap_or_default(),
            p.display().to_string(),
        ),
        None => (ResetConfiguration::default(), "flags".to_string()),
    };
    if let Some(d) = &args.cert_dir {
        cfg.certificates_dir = d.clone();
    }
    if let Some(s) = &args.cri_socket {
        cfg.cri_socket = s.clone();
    }
    cfg.cleanup_tmp_dir |= args.cleanup_tmp_dir;
    cfg.dry_run |= args.dry_run;
    cfg.force |= args.force;
    if !args.ignore_preflight_errors.is_empty() {
        cfg.ignore_preflight_errors = args.ignore_preflight_errors.clone();
    }
    if !args.skip_phases.is_empty() {
        cfg.skip_phases = args.skip_phases.clone();
    }
    defaults::reset(&mut cfg);
    validate::reset(&cfg)
        .into_result()
        .map_err(|errors| ConfigError::Invalid { file, errors })?;
    Ok(cfg)
}

/// Runs `kubeadm reset` (all phases) or `kubeadm reset phase <path>`.
pub fn run(root: &Path, args: &ResetArgs, matches: &ArgMatches, phase: Option<&str>) -> Result<()> {
    let cfg = load(args, matches)?;
    let opts = ResetOptions {
        force: cfg.force,
        dry_run: cfg.dry_run,
        cleanup_cni: args.cleanup_cni,
        cleanup_iptables: args.cleanup_iptables,
    };
    let fx = super::init::effects(root, opts.dry_run);
    let skips = cfg.skip_phases.clone();
    let mut ctx = ResetContext {
        cfg,
        fx,
        opts,
        confirm: ask_stdin,
        not_cleaned: Vec::new(),
        external_etcd_said: false,
    };
    reset_workflow()
        .run(&mut ctx, phase, &skips, |path| {
            super::on_phase("reset", path)
        })
        .map_err(|e| super::workflow_error(e, "reset"))?;
    for line in &ctx.not_cleaned {
        println!("\n{line}");
    }
    Ok(())
}
