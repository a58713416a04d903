//! `kubeadm init` and `kubeadm init phase …`: resolve the configuration, then run the phases.

use std::path::Path;

use clap::ArgMatches;
use kubeadm_api::config::InitConfig;
use kubeadm_api::decode::Documents;
use kubeadm_api::v1beta4::{ApiEndpoint, BootstrapToken, Patches};
use kubeadm_api::{BootstrapTokenString, ConfigError, Duration};
use kubeadm_effects::{DryRunEffects, Effects, RealEffects};

use super::{check_mixed_flags, flag_error, parse_feature_gates, read_config};
use crate::cli::InitArgs;
use crate::error::{Error, Result};
use crate::host;
use crate::phases::init::{self, InitContext, InitOptions};

/// Builds the effects layer for a command: the recorder under `--dry-run`, the host otherwise.
pub fn effects(root: &Path, dry_run: bool) -> Box<dyn Effects> {
    if dry_run {
        Box::new(DryRunEffects::new(root, Box::new(std::io::stdout())))
    } else {
        Box::new(RealEffects::new(root))
    }
}

/// Resolves the init configuration from `--config` and flags (flags are applied on top of the
/// file where upstream allows mixing them, and on top of the defaults otherwise).
pub fn load(args: &InitArgs, matches: &ArgMatches, fx: &dyn Effects) -> Result<InitConfig> {
    check_mixed_flags(matches)?;
    let (docs, file) = match &args.config {
        Some(path) => (read_config(path)?, path.display().to_string()),
        None => (Documents::default(), "flags".to_string()),
    };
    let cri_given_in_file = docs
        .init
        .as_ref()
        .is_some_and(|i| !i.node_registration.cri_socket.is_empty());
    let ha = docs.ha.clone();
    let control_plane = crate::services::resolve_mode(
        docs.control_plane.clone(),
        args.control_plane_mode.as_deref(),
        &file,
    )?;
    let (mut init, mut cluster, kubelet, proxy) = InitConfig::start(docs);
    if let Some(v) = &args.apiserver_advertise_address {
        init.local_api_endpoint = ApiEndpoint {
            advertise_address: v.clone(),
            ..init.local_api_endpoint
        };
    }
    if let Some(p) = args.apiserver_bind_port {
        init.local_api_endpoint.bind_port = p;
    }
    if !args.apiserver_cert_extra_sans.is_empty() {
        cluster.api_server.cert_sans = args.apiserver_cert_extra_sans.clone();
    }
    if let Some(v) = &args.cert_dir {
        cluster.certificates_dir = v.clone();
    }
    if let Some(v) = &args.certificate_key {
        init.certificate_key = v.clone();
    }
    if let Some(v) = &args.control_plane_endpoint {
        cluster.control_plane_endpoint = v.clone();
    }
    if let Some(v) = &args.cri_socket {
        init.node_registration.cri_socket = v.clone();
    }
    if let Some(v) = &args.feature_gates {
        cluster.feature_gates = parse_feature_gates(v)?;
    }
    if let Some(v) = &args.image_repository {
        cluster.image_repository = v.clone();
    }
    if let Some(v) = &args.kubernetes_version {
        cluster.kubernetes_version = v.clone();
    }
    if let Some(v) = &args.node_name {
        init.node_registration.name = v.clone();
    }
    if let Some(v) = &args.patches {
        init.patches = Some(Patches {
            directory: v.clone(),
        });
    }
    if let Some(v) = &args.pod_network_cidr {
        cluster.networking.pod_subnet = v.clone();
    }
    if let Some(v) = &args.service_cidr {
        cluster.networking.service_subnet = v.clone();
    }
    if let Some(v) = &args.service_dns_domain {
        cluster.networking.dns_domain = v.clone();
    }
    if args.token.is_some() || args.token_ttl.is_some() {
        let token = match &args.token {
            Some(t) => BootstrapTokenString::parse(t)
                .map_err(|e| flag_error("token", &kubeadm_api::token::redact(t), &e))?,
            None => BootstrapTokenString::default(),
        };
        let ttl = match &args.token_ttl {
            Some(t) => Some(Duration::parse(t).map_err(|e| flag_error("token-ttl", t, &e))?),
            None => None,
        };
        init.bootstrap_tokens = vec![BootstrapToken {
            token,
            ttl,
            ..Default::default()
        }];
    }
    if !args.ignore_preflight_errors.is_empty() {
        // Upstream takes the union of the flag and nodeRegistration.ignorePreflightErrors.
        let list = &mut init.node_registration.ignore_preflight_errors;
        list.extend(args.ignore_preflight_errors.iter().cloned());
        list.sort();
        list.dedup();
    }
    if !args.skip_phases.is_empty() {
        init.skip_phases = args.skip_phases.clone();
    }
    if args.dry_run {
        init.dry_run = true;
    }
    let ha = ha.map(|mut ha| {
        ha.set_defaults();
        // Clients reach the control plane through the built-in endpoint unless told otherwise.
        if cluster.control_plane_endpoint.is_empty() {
            cluster.control_plane_endpoint = ha.endpoint();
        }
        ha
    });
    let facts = host::facts(fx);
    let cri_given = cri_given_in_file || args.cri_socket.is_some();
    let mut cfg = InitConfig::complete(init, cluster, kubelet, proxy, &facts, cri_given, &file)?;
    if let Some(ha) = &ha {
        super::ha::check(ha, &file, cfg.bind_port())?;
        // The host's side too (the VIP on this node's link), before any phase writes a file.
        if ha.has_vip() {
            let address = cfg.advertise_ip().ok_or_else(|| {
                Error::with_hint(
                    "the HA endpoint needs this node's advertise address as an IP address",
                    "set localAPIEndpoint.advertiseAddress",
                )
            })?;
            super::ha::vip_interface(ha, address, &super::ha::interface_addresses()?)?;
        }
    }
    cfg.ha = ha;
    cfg.control_plane = control_plane;
    Ok(cfg)
}

/// Runs `kubeadm init` (all phases) or `kubeadm init phase <path>`.
pub fn run(root: &Path, args: &InitArgs, matches: &ArgMatches, phase: Option<&str>) -> Result<()> {
    // The config file may ask for dry-run too; decide the effects layer after loading it with a
    // read-only recorder, so that loading itself can never write.
    let probe = DryRunEffects::new(root, Box::new(std::io::sink()));
    let cfg = load(args, matches, &probe)?;
    let dry_run = args.dry_run || cfg.init.dry_run;
    let fx = effects(root, dry_run);
    if dry_run {
        println!(
            "[dryrun] Running in dry-run mode: nothing will be written and no command that changes the host will run"
        );
    }
    println!("[init] Using Kubernetes version: {}", cfg.version);
    if cfg.advertise_ip().is_some_and(|ip| ip.is_loopback()) {
        println!(
            "[init] WARNING: the advertise address {} is a loopback address: other nodes cannot reach this control plane (fine for a single-node lab)",
            cfg.init.local_api_endpoint.advertise_address
        );
    }
    let skips = if args.skip_phases.is_empty() {
        cfg.init.skip_phases.clone()
    } else {
        args.skip_phases.clone()
    };
    let ignore = cfg.init.node_registration.ignore_preflight_errors.clone();
    let opts = InitOptions {
        dry_run,
        upload_certs: args.upload_certs,
        skip_token_print: args.skip_token_print,
        skip_certificate_key_print: args.skip_certificate_key_print,
        ignore_preflight_errors: ignore,
    };
    let mut ctx = InitContext::new(cfg, fx.into(), opts);
    if phase.is_none() {
        // A malformed patch file must stop `init` before its first phase writes anything.
        init::manifests::load_patches(&ctx)?;
    }
    let workflow = init::init_workflow();
    workflow
        .run(&mut ctx, phase, &skips, |path| {
            super::on_phase("init", path)
        })
        .map_err(|e| super::workflow_error(e, "init"))?;
    ctx.fx.sync()?;
    if phase.is_none() && dry_run {
        println!(
            "[dryrun] Finished dry-running successfully. Above are the resources that would be created"
        );
    }
    Ok(())
}

impl From<ConfigError> for Box<Error> {
    fn from(e: ConfigError) -> Self {
        Box::new(Error::Config(e))
    }
}
