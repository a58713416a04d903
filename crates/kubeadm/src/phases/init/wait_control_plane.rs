//! wait-control-plane: wait for the kubelet and the control plane it starts from the static
//! Pod manifests, as upstream does per version (kubelet first from 1.31; every control-plane
//! component with `WaitForAllControlPlaneComponents`, else the API server alone). The polling
//! itself is [`crate::waiter`].

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kubeadm_api::config::InitConfig;
use kubeadm_effects::Effects;
use kubeadm_render::staticpod::MANIFESTS_DIR;

use super::InitContext;
use crate::error::{Error, Result};
use crate::waiter::{self, Endpoint, WaitError, WaitOptions};

/// Before 1.31 the kubelet was looked at only when the API server was not up after this long.
const KUBELET_INITIAL_WAIT: Duration = Duration::from_secs(40);

/// The control-plane components whose manifests name their health endpoints.
const COMPONENTS: [&str; 3] = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

/// v1beta4 `timeouts.controlPlaneComponentHealthCheck` (default 4m).
pub fn control_plane_timeout(cfg: &InitConfig) -> Duration {
    kubeadm_api::defaults::timeout(cfg.init.timeouts.as_ref(), |t| {
        t.control_plane_component_health_check
    })
}

/// v1beta4 `timeouts.kubeletHealthCheck` (default 4m).
pub fn kubelet_timeout(cfg: &InitConfig) -> Duration {
    kubeadm_api::defaults::timeout(cfg.init.timeouts.as_ref(), |t| t.kubelet_health_check)
}

/// Whether every control-plane component is waited for: the version's default for
/// `WaitForAllControlPlaneComponents`, unless `featureGates` says otherwise where the gate is
/// not locked.
pub fn wait_for_all_components(cfg: &InitConfig) -> bool {
    match cfg.info().wait_for_all_control_plane_components_gate() {
        None => false,
        Some((_, true)) => true,
        Some((default, false)) => cfg
            .cluster
            .feature_gates
            .get("WaitForAllControlPlaneComponents")
            .copied()
            .unwrap_or(default),
    }
}

/// The control-plane health endpoints from the manifests on disk (so `--patches` and
/// `extraArgs` are honoured, as upstream reads them); `advertise_address` is the API server's
/// address when its manifest names none. Also for `join --control-plane`.
pub fn endpoints_from_manifests(
    fx: &dyn Effects,
    advertise_address: &str,
) -> Result<Vec<Endpoint>> {
    let mut pods = Vec::new();
    for c in COMPONENTS {
        let path = Path::new(MANIFESTS_DIR).join(format!("{c}.yaml"));
        let Some(text) = fx.read_to_string(&path)? else {
            // controlPlaneMode: systemd: the same flags, from the service's env file.
            if let Some(pod) = crate::services::as_pod(fx, c)? {
                pods.push((c.to_string(), pod));
            }
            continue;
        };
        let pod: Pod = serde_saphyr::from_str(&text).map_err(|e| {
            Error::with_hint(
                format!("cannot parse {}: {e}", path.display()),
                "re-create it with `kubeadm init phase control-plane all`",
            )
        })?;
        pods.push((c.to_string(), pod));
    }
    waiter::control_plane_endpoints(&pods, advertise_address).map_err(|e| {
        Error::with_hint(
            format!(
                "could not parse the address and port of all control plane components: {e} in {MANIFESTS_DIR}"
            ),
            "write the manifests with `kubeadm init phase control-plane all`",
        )
    })
}

fn failed(ctx: &InitContext, e: WaitError) -> Error {
    Error::with_hint(
        format!("could not initialize a Kubernetes cluster: {e}"),
        waiter::troubleshooting(&ctx.cfg.init.node_registration.cri_socket),
    )
}

/// The phase.
pub fn run(ctx: &mut InitContext) -> Result<()> {
    let kubelet = waiter::kubelet_endpoint(&ctx.cfg.kubelet);
    let all = wait_for_all_components(&ctx.cfg);
    let cp_timeout = control_plane_timeout(&ctx.cfg);
    let first = ctx.cfg.info().kubelet_check_first();
    // The endpoints come from what is on disk (or what this dry run would have written).
    let control_plane = if all {
        match endpoints_from_manifests(
            ctx.fx.as_ref(),
            &ctx.cfg.init.local_api_endpoint.advertise_address,
        ) {
            Ok(e) => e,
            // A dry run of this phase alone has no manifests to read: say what it would check.
            Err(_) if ctx.opts.dry_run => COMPONENTS
                .iter()
                .map(|c| {
                    Endpoint::new(
                        *c,
                        format!("the health endpoint in {MANIFESTS_DIR}/{c}.yaml"),
                    )
                })
                .collect(),
            Err(e) => return Err(e),
        }
    } else {
        vec![Endpoint::new(
            "The API server",
            format!("{}/readyz", ctx.cfg.local_api_server_url()),
        )]
    };
    let mut what: Vec<String> = kubelet.iter().map(|e| e.url.clone()).collect();
    what.extend(control_plane.iter().map(|e| e.url.clone()));
    let what = format!(
        "the kubelet and the control plane to be healthy: {}",
        what.join(", ")
    );
    // The probes run inside the effects layer's wait: a dry run says what it would wait for
    // and probes nothing; a real run's first readiness check is the whole wait below.
    let mut outcome = Ok(());
    ctx.fx.wait_until(&what, cp_timeout, &mut || {
        outcome = wait(ctx, kubelet.clone(), &control_plane, all, first);
        true
    });
    outcome
}

/// The real wait: the kubelet (first, from 1.31), then the control plane.
fn wait(
    ctx: &InitContext,
    kubelet: Option<Endpoint>,
    control_plane: &[Endpoint],
    all: bool,
    first: bool,
) -> Result<()> {
    let cp_timeout = control_plane_timeout(&ctx.cfg);
    let kubelet_timeout = kubelet_timeout(&ctx.cfg);
    println!(
        "[wait-control-plane] Waiting for the kubelet to boot up the control plane as static Pods from directory {MANIFESTS_DIR:?}"
    );
    if first {
        match &kubelet {
            None => println!(
                "[kubelet-check] Skipping the kubelet health check because the healthz port is set to 0"
            ),
            Some(k) => {
                println!(
                    "[kubelet-check] Waiting for a healthy kubelet at {}. This can take up to {}",
                    k.url,
                    waiter::go_duration(kubelet_timeout)
                );
                waiter::wait_for_blocking(
                    std::slice::from_ref(k),
                    kubelet_timeout,
                    &WaitOptions::new("kubelet-check"),
                )
                .map_err(|e| failed(ctx, e))?;
            }
        }
    }
    let opts = if all {
        println!(
            "[control-plane-check] Waiting for healthy control plane components. This can take up to {}",
            waiter::go_duration(cp_timeout)
        );
        let mut o = WaitOptions::new("control-plane-check");
        o.announce = true;
        o
    } else {
        println!(
            "[api-check] Waiting for a healthy API server. This can take up to {}",
            waiter::go_duration(cp_timeout)
        );
        WaitOptions::new("api-check")
    };
    if first || kubelet.is_none() {
        waiter::wait_for_blocking(control_plane, cp_timeout, &opts).map_err(|e| failed(ctx, e))?;
        return Ok(());
    }
    // Before 1.31: the control plane, and the kubelet only once the first 40 s have passed.
    let kubelet = kubelet.unwrap_or_else(|| Endpoint::new("The kubelet", ""));
    let rt = crate::apiclient::runtime()?;
    let result = rt.block_on(async {
        let cp = waiter::wait_for(control_plane, cp_timeout, &opts);
        let kubelet_watch = async {
            tokio::time::sleep(KUBELET_INITIAL_WAIT).await;
            loop {
                if let Err(e) = waiter::probe(&kubelet.url).await {
                    println!("[kubelet-check] It seems like the kubelet isn't running or healthy.");
                    return WaitError::Timeout {
                        unhealthy: vec![waiter::Unhealthy {
                            name: kubelet.name.clone(),
                            url: kubelet.url.clone(),
                            last_error: e,
                        }],
                        timeout: KUBELET_INITIAL_WAIT,
                    };
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        };
        tokio::select! {
            r = cp => r.map(|_| ()),
            e = kubelet_watch => Err(e),
        }
    });
    result.map_err(|e| failed(ctx, e))
}
