//! `join phase preflight`: upstream's join checks; for a control-plane join also the cluster's
//! stable endpoint and the shared certificates (unless they are downloaded).

use std::path::Path;

use kubeadm_preflight::Inputs;
use kubeadm_workflow::Phase;

use super::JoinContext;
use crate::error::{Error, Result};

/// `preflight`.
pub fn phase() -> Phase<JoinContext, Error> {
    Phase::leaf("preflight", "Run join pre-flight checks", run).flags(
        &[
            super::DISCOVERY_FLAGS,
            &[
                "ignore-preflight-errors",
                "control-plane",
                "apiserver-advertise-address",
                "apiserver-bind-port",
                "cri-socket",
                "node-name",
                "certificate-key",
                "control-plane-mode",
            ],
        ]
        .concat(),
    )
}

pub(super) fn run(ctx: &mut JoinContext) -> Result<()> {
    let join = ctx.cfg.join.clone();
    let mut inputs = Inputs::from_join(&join);
    if ctx.control_plane() {
        // The control-plane checks need the cluster's version, subnets and etcd layout.
        let cfg = ctx.init_config()?;
        if cfg.cluster.control_plane_endpoint.is_empty() {
            return Err(Error::with_hint(
                "unable to add a new control plane instance to a cluster that doesn't have a stable controlPlaneEndpoint address",
                "set ClusterConfiguration.controlPlaneEndpoint (a load balancer or DNS name for every API server) when creating the cluster; see the HA documentation",
            ));
        }
        inputs.version = Some(cfg.version.clone());
        inputs.service_subnet = cfg.cluster.networking.service_subnet.clone();
        inputs.pod_subnet = cfg.cluster.networking.pod_subnet.clone();
        inputs.local_etcd_data_dir = cfg.local_etcd().map(|l| l.data_dir.clone());
        inputs.external_etcd = cfg.cluster.etcd.external.clone();
        inputs.service_binaries =
            ctx.with_init(|i| super::super::init::preflight::service_binaries(i))?;
        if !inputs.download_certs {
            // Without a certificate key the shared certificates must have been copied by hand.
            let dir = Path::new(&cfg.cluster.certificates_dir);
            let shared = kubeadm_cluster::certs_secret::shared_files(cfg.local_etcd().is_some());
            let missing: Vec<String> = shared
                .iter()
                .map(|f| dir.join(f))
                .filter(|p| !ctx.fx.exists(p))
                .map(|p| p.display().to_string())
                .collect();
            if !missing.is_empty() {
                return Err(Error::with_hint(
                    format!(
                        "unable to add a new control plane instance: the shared certificates are missing: {}",
                        missing.join(", ")
                    ),
                    "pass --certificate-key (from `kubeadm init --upload-certs` or `kubeadm init phase upload-certs --upload-certs`), or copy the files from an existing control-plane node",
                ));
            }
        }
        println!(
            "[preflight] Running pre-flight checks before initializing the new control plane instance"
        );
    }
    kubeadm_preflight::run_checks(
        ctx.fx.as_ref(),
        Inputs::join_role(&join),
        &inputs,
        &ctx.opts.ignore_preflight_errors,
        ctx.opts.dry_run,
    )?;
    if ctx.control_plane() {
        // As upstream, only a control-plane join pulls: a worker runs no static Pods.
        let cfg = ctx.init_config()?;
        crate::container_runtime::preflight_pull(
            ctx.fx.as_ref(),
            &cfg,
            &crate::container_runtime::PreflightPull::of_node(&cfg),
            &ctx.opts.ignore_preflight_errors,
            ctx.opts.dry_run,
        )?;
    }
    Ok(())
}
