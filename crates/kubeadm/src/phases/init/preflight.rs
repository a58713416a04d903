//! The `preflight` phase of init: upstream's pre-flight checks (see `kubeadm_preflight`) for a
//! new control-plane node, reported together; `--dry-run` reports instead of stopping.

use kubeadm_api::config::InitConfig;
use kubeadm_preflight::{Inputs, Role, ServiceBinary};

use super::InitContext;
use crate::error::Error;

/// What the checks need from the init configuration.
pub fn init_inputs(cfg: &InitConfig) -> Inputs {
    let ipvs = cfg
        .kube_proxy
        .get("mode")
        .and_then(|m| m.as_str())
        .is_some_and(|m| m.eq_ignore_ascii_case("ipvs"));
    Inputs {
        version: Some(cfg.version.clone()),
        node_name: cfg.node_name().to_string(),
        cri_socket: cfg.init.node_registration.cri_socket.clone(),
        bind_port: cfg.bind_port(),
        advertise_address: cfg.init.local_api_endpoint.advertise_address.clone(),
        service_subnet: cfg.cluster.networking.service_subnet.clone(),
        pod_subnet: cfg.cluster.networking.pod_subnet.clone(),
        local_etcd_data_dir: cfg.local_etcd().map(|l| l.data_dir.clone()),
        external_etcd: cfg.cluster.etcd.external.clone(),
        kube_proxy_ipvs: ipvs,
        ..Default::default()
    }
}

/// controlPlaneMode: systemd: the binary each unit of this node will run and the version it
/// must report, from the same Pods the etcd and control-plane phases render.
pub(crate) fn service_binaries(ctx: &InitContext) -> Result<Vec<ServiceBinary>, Error> {
    if !ctx.cfg.control_plane.systemd() {
        return Ok(Vec::new());
    }
    let mut pods = Vec::new();
    if let Some(local) = ctx.cfg.local_etcd() {
        pods.push(super::etcd::local_pod(ctx, local)?);
    }
    for c in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        pods.push(super::control_plane::render_pod(ctx, c)?);
    }
    pods.iter()
        .map(|pod| {
            let files = crate::services::files(&ctx.cfg.control_plane, pod)?;
            Ok(ServiceBinary {
                component: files.component,
                path: files.binary,
                version: crate::services::binary_version(pod),
            })
        })
        .collect()
}

/// Runs the init checks.
pub fn run(ctx: &mut InitContext) -> Result<(), Error> {
    let mut inputs = init_inputs(&ctx.cfg);
    inputs.service_binaries = service_binaries(ctx)?;
    kubeadm_preflight::run_checks(
        ctx.fx.as_ref(),
        Role::Init,
        &inputs,
        &ctx.opts.ignore_preflight_errors,
        ctx.opts.dry_run,
    )?;
    crate::container_runtime::preflight_pull(
        ctx.fx.as_ref(),
        &ctx.cfg,
        &crate::container_runtime::PreflightPull::of_node(&ctx.cfg),
        &ctx.opts.ignore_preflight_errors,
        ctx.opts.dry_run,
    )?;
    Ok(())
}
