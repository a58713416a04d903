//! `join phase wait-control-plane`: with `WaitForAllControlPlaneComponents`, wait for this
//! node's control-plane components (init's wait code).

use kubeadm_workflow::Phase;

use super::JoinContext;
use crate::error::{Error, Result};
use crate::phases::init::wait_control_plane;
use crate::waiter;

/// `wait-control-plane` (control-plane joins only).
pub fn phase() -> Phase<JoinContext, Error> {
    Phase::leaf(
        "wait-control-plane",
        "Wait for the control plane to start",
        run,
    )
    .flags(&[super::DISCOVERY_FLAGS, &["control-plane"]].concat())
    .when(super::is_control_plane)
}

pub(super) fn run(ctx: &mut JoinContext) -> Result<()> {
    let cfg = ctx.init_config()?;
    // Upstream waits here only with WaitForAllControlPlaneComponents (version table).
    if !wait_control_plane::wait_for_all_components(&cfg) {
        tracing::info!(
            "[wait-control-plane] Skipping phase as the feature gate WaitForAllControlPlaneComponents is disabled"
        );
        return Ok(());
    }
    let timeout = wait_control_plane::control_plane_timeout(&cfg);
    let fx = ctx.fx.as_ref();
    // The probes run inside the effects layer's wait: a dry run says what it would wait for.
    let mut outcome = Ok(());
    fx.wait_until(
        "the control plane components to become healthy",
        timeout,
        &mut || {
            outcome = wait(fx, &cfg, timeout);
            true
        },
    );
    outcome
}

/// The real wait for this node's control-plane components, found from their manifests.
fn wait(
    fx: &dyn kubeadm_effects::Effects,
    cfg: &kubeadm_api::config::InitConfig,
    timeout: std::time::Duration,
) -> Result<()> {
    let endpoints = wait_control_plane::endpoints_from_manifests(
        fx,
        &cfg.init.local_api_endpoint.advertise_address,
    )?;
    waiter::wait_for_blocking(
        &endpoints,
        timeout,
        &waiter::WaitOptions::new("control-plane-check"),
    )
    .map_err(|e| {
        Error::with_hint(
            format!("failed while waiting for the control plane to start: {e}"),
            waiter::troubleshooting(&cfg.init.node_registration.cri_socket),
        )
    })?;
    Ok(())
}
