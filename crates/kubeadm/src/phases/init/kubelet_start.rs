//! `init phase kubelet-start`: the kubelet's `config.yaml`, `kubeadm-flags.env` (and instance
//! config), then a (re)start of the kubelet when systemd runs. Join's kubelet-start writes the
//! same files through [`run_kubelet_start`].

use std::path::Path;

use kubeadm_effects::{CommandKind, Content};
use kubeadm_render::kubelet;
use kubeadm_workflow::Phase;

use super::InitContext;
use super::manifests::{ensure_private_dir, load_patches, report_patches};
use crate::error::{Error, Result};
use crate::host;

/// Mode of the kubelet's files.
const KUBELET_FILE_MODE: u32 = 0o644;

/// `kubelet-start`: write the kubelet's files and (re)start it.
pub fn phase() -> Phase<InitContext, Error> {
    Phase::leaf(
        "kubelet-start",
        "Write kubelet settings and (re)start the kubelet",
        run_kubelet_start,
    )
    .flags(&["config", "cri-socket", "node-name", "patches", "dry-run"])
}

/// The kubelet's `config.yaml` and instance config (with NodeLocalCRISocket) for this node:
/// the cluster's KubeletConfiguration, systemd-resolved's resolv.conf, `--patches`, the node's
/// CRI endpoint (shared by init, join and `upgrade … kubelet-config`).
pub(crate) fn kubelet_files(ctx: &InitContext) -> Result<(String, Option<String>)> {
    let patches = load_patches(ctx)?;
    let systemd = ctx.fx.exists(Path::new("/run/systemd/system"));
    let mut config = ctx.cfg.kubelet.clone();
    // Upstream's kubelet defaulting: with systemd-resolved active, /etc/resolv.conf points at
    // its stub resolver (127.0.0.53), which Pods cannot reach; hand the kubelet the real list.
    if systemd && config.get("resolvConf").is_none() {
        let resolved = ctx
            .fx
            .run(
                CommandKind::Query,
                "systemctl",
                &["is-active", "systemd-resolved"],
            )
            .is_ok_and(|o| o.success());
        if let (true, Some(obj)) = (resolved, config.as_object_mut()) {
            obj.insert("resolvConf".into(), kubelet::RESOLVED_RESOLV_CONF.into());
        }
    }
    if let Some(set) = &patches {
        let applied = set.apply("kubeletconfiguration", &mut config)?;
        report_patches("kubeletconfiguration", &applied);
    }
    // With NodeLocalCRISocket the node's CRI endpoint goes into its own file and is merged
    // into config.yaml after the patches, as upstream does.
    let instance = kubelet::instance_config(&ctx.cfg);
    kubelet::apply_instance_config(&ctx.cfg, &mut config);
    let config_yaml = kubelet::config_yaml(&config)?;
    Ok((config_yaml, instance))
}

/// Writes the instance config (when there is one) and `config.yaml` (shared by kubelet-start
/// and `upgrade … kubelet-config`).
pub(crate) fn write_kubelet_files(
    fx: &dyn kubeadm_effects::Effects,
    cfg: &kubeadm_api::config::InitConfig,
    config_yaml: String,
    instance: Option<String>,
) -> Result<()> {
    match instance {
        Some(text) => {
            println!(
                "[kubelet-start] Writing instance kubelet configuration to file {:?}",
                kubelet::INSTANCE_CONFIG_PATH
            );
            fx.write_file(
                Path::new(kubelet::INSTANCE_CONFIG_PATH),
                Content::Plain(text.into_bytes()),
                KUBELET_FILE_MODE,
            )?;
        }
        None if cfg.info().node_local_cri_socket_gate().is_some() => println!(
            "[kubelet-start] Skipping writing instance kubelet configuration file as the NodeLocalCRISocket feature gate is disabled"
        ),
        None => {}
    }
    println!(
        "[kubelet-start] Writing kubelet configuration to file {:?}",
        kubelet::CONFIG_PATH
    );
    fx.write_file(
        Path::new(kubelet::CONFIG_PATH),
        Content::Plain(config_yaml.into_bytes()),
        KUBELET_FILE_MODE,
    )?;
    Ok(())
}

/// Writes the kubelet's files and (re)starts it (shared by init and join).
pub(crate) fn run_kubelet_start(ctx: &mut InitContext) -> Result<()> {
    let systemd = ctx.fx.exists(Path::new("/run/systemd/system"));
    let (config_yaml, instance) = kubelet_files(ctx)?;
    let env = kubelet::flags_env(&ctx.cfg, &host::hostname());
    // Upstream keeps the kubelet's directory private.
    let kubelet_dir = Path::new(kubelet::CONFIG_PATH)
        .parent()
        .unwrap_or(Path::new("/"));
    ensure_private_dir(ctx, kubelet_dir, 0o700)?;
    if systemd {
        // Upstream stops the kubelet while its files change; a failure here is not fatal.
        let _ = ctx
            .fx
            .run(CommandKind::Mutate, "systemctl", &["stop", "kubelet"]);
    } else {
        println!(
            "[kubelet-start] WARNING: no supported init system detected (systemd is not running); the kubelet is not stopped while its configuration is written"
        );
    }
    println!(
        "[kubelet-start] Writing kubelet environment file with flags to file {:?}",
        kubelet::FLAGS_ENV_PATH
    );
    ctx.fx.write_file(
        Path::new(kubelet::FLAGS_ENV_PATH),
        Content::Plain(env.into_bytes()),
        KUBELET_FILE_MODE,
    )?;
    write_kubelet_files(ctx.fx.as_ref(), &ctx.cfg, config_yaml, instance)?;
    if !systemd {
        println!(
            "[kubelet-start] WARNING: no supported init system detected: start the kubelet yourself"
        );
        return Ok(());
    }
    println!("[kubelet-start] Starting the kubelet");
    for args in [&["daemon-reload"][..], &["restart", "kubelet"][..]] {
        match ctx.fx.run(CommandKind::Mutate, "systemctl", args) {
            Ok(out) if out.success() => {}
            Ok(out) => {
                println!(
                    "[kubelet-start] WARNING: unable to start the kubelet service: systemctl {} failed: {}",
                    args.join(" "),
                    out.stderr.trim()
                );
                return Ok(());
            }
            Err(e) => {
                println!("[kubelet-start] WARNING: unable to start the kubelet service: {e}");
                return Ok(());
            }
        }
    }
    Ok(())
}
