//! `kubeadm join` and `kubeadm join phase …`: resolve the JoinConfiguration from `--config` or
//! flags, then run the join phases.

use std::path::Path;

use clap::ArgMatches;
use kubeadm_api::config::JoinConfig;
use kubeadm_api::v1beta4::{
    ApiEndpoint, BootstrapTokenDiscovery, FileDiscovery, JoinConfiguration, JoinControlPlane,
    Patches,
};
use kubeadm_effects::DryRunEffects;

use super::{check_mixed_flags, read_config};
use crate::cli::JoinArgs;
use crate::error::{Error, Result};
use crate::host;
use crate::phases::join::{JoinContext, JoinOptions, join_workflow};

/// Resolves the join configuration: the file's JoinConfiguration, or one built from flags as
/// upstream does (`--token` feeds both discovery and TLS bootstrap unless those are given).
pub fn load(args: &JoinArgs, matches: &ArgMatches, root: &Path) -> Result<JoinConfig> {
    check_mixed_flags(matches)?;
    let mut ha = None;
    let mut control_plane = None;
    let (mut join, file, cri_from_file) = match &args.config {
        Some(p) => {
            let docs = read_config(p)?;
            ha = docs.ha.clone();
            control_plane = docs.control_plane.clone();
            let join = docs.join.ok_or_else(|| {
                Error::with_hint(
                    format!("{} holds no JoinConfiguration", p.display()),
                    "add a JoinConfiguration document (`kubeadm config print join-defaults` shows one)",
                )
            })?;
            let cri = !join.node_registration.cri_socket.is_empty();
            (join, p.display().to_string(), cri)
        }
        None => (flags_config(args), "flags".to_string(), false),
    };
    if let Some(n) = &args.node_name {
        join.node_registration.name = n.clone();
    }
    if !args.ignore_preflight_errors.is_empty() {
        let list = &mut join.node_registration.ignore_preflight_errors;
        list.extend(args.ignore_preflight_errors.iter().cloned());
        list.sort();
        list.dedup();
    }
    if !args.skip_phases.is_empty() {
        join.skip_phases = args.skip_phases.clone();
    }
    join.dry_run |= args.dry_run;
    let probe = DryRunEffects::new(root, Box::new(std::io::sink()));
    let facts = host::facts(&probe);
    let cri_given = cri_from_file || args.cri_socket.is_some();
    let mut cfg = JoinConfig::complete(join, &facts, cri_given, &file)?;
    cfg.control_plane =
        crate::services::resolve_mode(control_plane, args.control_plane_mode.as_deref(), &file)?;
    // The built-in endpoint is a control-plane node's part; a worker reaches it as any client.
    if let (Some(mut ha), Some(cp)) = (ha, cfg.join.control_plane.as_ref()) {
        ha.set_defaults();
        let port = u16::try_from(cp.local_api_endpoint.bind_port)
            .ok()
            .filter(|p| *p != 0)
            .unwrap_or(6443);
        super::ha::check(&ha, &file, port)?;
        if ha.has_vip() {
            let address: std::net::IpAddr = cp
                .local_api_endpoint
                .advertise_address
                .parse()
                .map_err(|_| {
                    Error::with_hint(
                        "the HA endpoint needs this node's advertise address as an IP address",
                        "set controlPlane.localAPIEndpoint.advertiseAddress",
                    )
                })?;
            super::ha::vip_interface(&ha, address, &super::ha::interface_addresses()?)?;
        }
        cfg.ha = Some(ha);
    }
    Ok(cfg)
}

/// A JoinConfiguration from flags alone.
fn flags_config(args: &JoinArgs) -> JoinConfiguration {
    let mut join = JoinConfiguration::default();
    let discovery_token = args.discovery_token.clone().or(args.token.clone());
    if let Some(f) = &args.discovery_file {
        join.discovery.file = Some(FileDiscovery {
            kube_config_path: f.clone(),
        });
    } else if discovery_token.is_some() || args.api_server_endpoint.is_some() {
        join.discovery.bootstrap_token = Some(BootstrapTokenDiscovery {
            token: discovery_token.unwrap_or_default(),
            api_server_endpoint: args.api_server_endpoint.clone().unwrap_or_default(),
            ca_cert_hashes: args.discovery_token_ca_cert_hash.clone(),
            unsafe_skip_ca_verification: args.discovery_token_unsafe_skip_ca_verification,
        });
    }
    if let Some(t) = args.tls_bootstrap_token.clone().or(args.token.clone()) {
        join.discovery.tls_bootstrap_token = t;
    }
    if let Some(s) = &args.cri_socket {
        join.node_registration.cri_socket = s.clone();
    }
    if let Some(p) = &args.patches {
        join.patches = Some(Patches {
            directory: p.clone(),
        });
    }
    if args.control_plane {
        join.control_plane = Some(JoinControlPlane {
            local_api_endpoint: ApiEndpoint {
                advertise_address: args.apiserver_advertise_address.clone().unwrap_or_default(),
                bind_port: args.apiserver_bind_port.unwrap_or_default(),
            },
            certificate_key: args.certificate_key.clone().unwrap_or_default(),
        });
    }
    join
}

/// Runs `kubeadm join` (all phases) or `kubeadm join phase <path>`.
pub fn run(root: &Path, args: &JoinArgs, matches: &ArgMatches, phase: Option<&str>) -> Result<()> {
    let cfg = load(args, matches, root)?;
    let dry_run = cfg.join.dry_run;
    let fx = super::init::effects(root, dry_run);
    if dry_run {
        println!(
            "[dryrun] Running in dry-run mode: nothing will be written, no command that changes the host will run, and the cluster is only read"
        );
    }
    let skips = cfg.join.skip_phases.clone();
    let control_plane = cfg.join.control_plane.is_some();
    let opts = JoinOptions {
        dry_run,
        ignore_preflight_errors: cfg.join.node_registration.ignore_preflight_errors.clone(),
    };
    let node = cfg.join.node_registration.name.clone();
    let mut ctx = JoinContext::new(cfg, fx.into(), opts);
    join_workflow()
        .run(&mut ctx, phase, &skips, |path| {
            super::on_phase("join", path)
        })
        .map_err(|e| super::workflow_error(e, "join"))?;
    if phase.is_some() {
        return Ok(());
    }
    if dry_run {
        println!(
            "[dryrun] Finished dry-running successfully. Above are the resources that would be created"
        );
        return Ok(());
    }
    if control_plane {
        println!(
            "\nThis node has joined the cluster and a new control plane instance was created:\n\n\
* Certificate signing request was sent to apiserver and approval was received.\n\
* The Kubelet was informed of the new secure connection details.\n\
* Control plane label and taint were applied to the new node.\n\
* The Kubernetes control plane instances scaled up.\n\
* A new etcd member was added to the local/stacked etcd cluster.\n\n\
To start administering your cluster from this node, you need to run the following as a regular user:\n\n\
\tmkdir -p $HOME/.kube\n\
\tsudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config\n\
\tsudo chown $(id -u):$(id -g) $HOME/.kube/config\n\n\
Run 'kubectl get nodes' to see this node ({node}) join the cluster.\n"
        );
    } else {
        println!(
            "\nThis node has joined the cluster:\n\
* Certificate signing request was sent to apiserver and a response was received.\n\
* The Kubelet was informed of the new secure connection details.\n\n\
Run 'kubectl get nodes' on the control-plane to see this node join the cluster.\n"
        );
    }
    Ok(())
}
