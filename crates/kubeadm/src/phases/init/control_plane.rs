//! `init phase control-plane apiserver|controller-manager|scheduler`: the control plane's
//! static Pod manifests (also written by `join phase control-plane-prepare control-plane`).

use k8s_openapi::api::core::v1::Pod;
use kubeadm_render::staticpod::MANIFESTS_DIR;
use kubeadm_render::{controlplane, pod_yaml};
use kubeadm_workflow::Phase;

use super::InitContext;
use super::manifests::{host_info, load_patches, report_patches, write_component};
use crate::error::{Error, Result};

/// Flags of every control-plane phase (upstream's `getControlPlanePhaseFlags`).
const CONTROL_PLANE_FLAGS: &[&str] = &[
    "config",
    "cert-dir",
    "kubernetes-version",
    "image-repository",
    "patches",
    "dry-run",
    "control-plane-mode",
];

/// `control-plane` with `apiserver`, `controller-manager` and `scheduler`.
pub fn phase() -> Phase<InitContext, Error> {
    Phase::group(
        "control-plane",
        "Generate all static Pod manifest files necessary to establish the control plane",
        vec![
            Phase::leaf(
                "apiserver",
                "Generates the kube-apiserver static Pod manifest",
                |c| run_component(c, "kube-apiserver"),
            )
            .flags(
                &[
                    CONTROL_PLANE_FLAGS,
                    &[
                        "apiserver-advertise-address",
                        "control-plane-endpoint",
                        "apiserver-bind-port",
                        "feature-gates",
                        "service-cidr",
                    ],
                ]
                .concat(),
            ),
            Phase::leaf(
                "controller-manager",
                "Generates the kube-controller-manager static Pod manifest",
                |c| run_component(c, "kube-controller-manager"),
            )
            .flags(&[CONTROL_PLANE_FLAGS, &["pod-network-cidr"]].concat()),
            Phase::leaf(
                "scheduler",
                "Generates the kube-scheduler static Pod manifest",
                |c| run_component(c, "kube-scheduler"),
            )
            .flags(CONTROL_PLANE_FLAGS),
        ],
    )
}

/// Builds, patches and writes one control-plane component's manifest.
pub(crate) fn run_component(ctx: &mut InitContext, component: &str) -> Result<()> {
    let pod = render_pod(ctx, component)?;
    if !ctx.cfg.control_plane.systemd() {
        if component == "kube-apiserver" {
            println!("[control-plane] Using manifest folder {MANIFESTS_DIR:?}");
        }
        println!("[control-plane] Creating static Pod manifest for {component:?}");
    }
    write_component(ctx, component, &pod)?;
    // The built-in endpoint fronts the API server: written with it, by init and by a
    // control-plane join alike.
    if component == "kube-apiserver"
        && let Some(ha) = &ctx.cfg.ha
    {
        let address = ctx.cfg.advertise_ip().ok_or_else(|| {
            Error::msg("the advertise address is not an IP address; the HA endpoint needs one")
        })?;
        crate::commands::ha::write_node_files(
            ctx.fx.as_ref(),
            ha,
            ctx.cfg.node_name(),
            address,
            ctx.cfg.bind_port(),
        )?;
    }
    Ok(())
}

/// One control-plane component's manifest as it would be written (patches applied): shared with
/// `upgrade`, which compares it with the live one before swapping.
pub(crate) fn render_component(ctx: &InitContext, component: &str) -> Result<String> {
    Ok(pod_yaml(&render_pod(ctx, component)?)?)
}

/// One control-plane component's Pod (patches applied): what its manifest or, in systemd mode,
/// its unit and environment file are made of.
pub(crate) fn render_pod(ctx: &InitContext, component: &str) -> Result<Pod> {
    let patches = load_patches(ctx)?;
    let host = host_info(ctx);
    let Some(mut pod) = controlplane::pod(&ctx.cfg, component, &host) else {
        return Err(Error::msg(format!(
            "unknown control-plane component {component}"
        )));
    };
    if let Some(set) = &patches {
        let (patched, applied) = set.apply_pod(component, pod)?;
        report_patches(component, &applied);
        pod = patched;
    }
    Ok(pod)
}
