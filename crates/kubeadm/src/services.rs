//! `controlPlaneMode: systemd`: etcd and the control-plane components as systemd services
//! instead of static Pods. The phases build the same Pod either way; here it becomes a unit and
//! an environment file (`kubeadm_render::service`), written through the effects layer and
//! started with `systemctl` when systemd runs the host, and removed by `reset`.

use std::path::Path;

use k8s_openapi::api::core::v1::Pod;
use kubeadm_api::mode::{self, ControlPlaneConfiguration};
use kubeadm_effects::{CommandKind, Content, Effects};
use kubeadm_render::service::{self, COMPONENTS, ServiceFiles};

use crate::error::{Error, Result};
use crate::timers::{systemctl, systemd_runs};

/// Mode of the environment files: they may carry proxy credentials, so private as manifests.
const ENV_MODE: u32 = 0o600;
/// Mode of the units (systemd reads them; nothing secret inside).
const UNIT_MODE: u32 = 0o644;

/// The ControlPlaneConfiguration in force: the file's document (if any) with
/// `--control-plane-mode` over it, defaulted and validated; `file` names the source.
pub fn resolve_mode(
    doc: Option<ControlPlaneConfiguration>,
    flag: Option<&str>,
    file: &str,
) -> Result<ControlPlaneConfiguration> {
    let mut cfg = doc.unwrap_or_default();
    if let Some(m) = flag {
        if m != mode::MODE_STATIC_POD && m != mode::MODE_SYSTEMD {
            return Err(super::commands::flag_error(
                "control-plane-mode",
                m,
                &format!(
                    "supported values: {:?}, {:?}",
                    mode::MODE_STATIC_POD,
                    mode::MODE_SYSTEMD
                ),
            ));
        }
        cfg.control_plane_mode = m.to_string();
    }
    cfg.set_defaults();
    let errors = cfg.validate();
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(Error::with_hint(
            format!("{file}: invalid {}:\n{}", mode::KIND, errors.join("\n")),
            "fix the fields named above",
        ))
    }
}

/// The version a component's binary directory is chosen by: the tag of the Pod's image
/// (`v1.31.2`; etcd's `3.5.15-0` becomes `v3.5.15`).
pub fn binary_version(pod: &Pod) -> String {
    let image = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
    let tag = tag.split('-').next().unwrap_or(tag);
    if tag.starts_with('v') || tag.is_empty() {
        tag.to_string()
    } else {
        format!("v{tag}")
    }
}

/// The unit and environment file of the component `pod` runs, with its binary from `cfg`.
pub fn files(cfg: &ControlPlaneConfiguration, pod: &Pod) -> Result<ServiceFiles> {
    let dir = cfg.binary_dir_for(&binary_version(pod));
    Ok(service::component_service(pod, &dir)?)
}

/// Writes a component's environment file and unit (both built before either is written).
pub fn write(fx: &dyn Effects, files: &ServiceFiles) -> Result<()> {
    let env = service::env_path(&files.component);
    let unit = service::unit_path(&files.component);
    fx.write_file(
        Path::new(&env),
        Content::Plain(files.env.clone().into_bytes()),
        ENV_MODE,
    )?;
    fx.write_file(
        Path::new(&unit),
        Content::Plain(files.unit.clone().into_bytes()),
        UNIT_MODE,
    )?;
    println!(
        "[control-plane] Wrote the systemd unit {unit:?} and its flags {env:?} for {:?}",
        files.component
    );
    Ok(())
}

/// Reloads systemd and (re)starts the component's service, enabled at boot: a re-run picks up
/// changed flags. Where systemd does not run the host (a `--rootfs` being prepared, a
/// container), says how to start it later.
pub fn start(fx: &dyn Effects, component: &str) -> Result<()> {
    let name = service::unit_name(component);
    fx.sync()?;
    if !systemd_runs(fx) {
        fx.note(&format!(
            "systemd does not run this host: start the service later with `systemctl daemon-reload && systemctl enable {name} && systemctl restart {name}`"
        ));
        return Ok(());
    }
    systemctl(fx, &["daemon-reload"])?;
    systemctl(fx, &["enable", &name])?;
    systemctl(fx, &["restart", &name])?;
    println!("[control-plane] Enabled and (re)started {name}");
    Ok(())
}

/// True when this node's kube-apiserver runs as a service of ours (how `upgrade` and `reset`
/// tell the mode of a node without a configuration file).
pub fn installed(fx: &dyn Effects) -> bool {
    ours(fx, &service::unit_path("kube-apiserver")) || ours(fx, &service::unit_path("etcd"))
}

fn ours(fx: &dyn Effects, path: &str) -> bool {
    fx.read(Path::new(path))
        .ok()
        .flatten()
        .is_some_and(|b| service::is_ours(&String::from_utf8_lossy(&b)))
}

/// The flags of a component's service, from its environment file (`None` when this node has
/// no service of ours for it): what `reset` reads etcd's URLs and data directory from.
pub fn flags(fx: &dyn Effects, component: &str) -> Result<Option<Vec<String>>> {
    let path = service::env_path(component);
    let Some(bytes) = fx.read(Path::new(&path))? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    if !service::is_ours(&text) {
        return Ok(None);
    }
    let prefix = format!("{}=", service::args_variable(component));
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map(|v| {
            v.trim_matches('"')
                .split_whitespace()
                .map(str::to_string)
                .collect()
        }))
}

/// The component's service read back as the Pod it was built from, as far as its command line
/// goes (`None` without a service of ours): what wait-control-plane reads the health
/// endpoints' addresses and ports from, as it does from a static Pod manifest.
pub fn as_pod(fx: &dyn Effects, component: &str) -> Result<Option<Pod>> {
    let Some(flags) = flags(fx, component)? else {
        return Ok(None);
    };
    let mut command = vec![component.to_string()];
    command.extend(flags);
    let pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": component},
        "spec": {"containers": [{"name": component, "command": command}]},
    }))
    .map_err(|e| Error::msg(format!("cannot read the {component} service's flags: {e}")))?;
    Ok(Some(pod))
}

/// `reset`: stops and disables every service of ours, then removes its unit and environment
/// file. Files not written by this mode (a unit of the same name an operator wrote) are left.
pub fn remove_all(fx: &dyn Effects) -> Result<()> {
    let running = systemd_runs(fx);
    let mut removed = false;
    for component in COMPONENTS.iter().rev() {
        let unit = service::unit_path(component);
        if !ours(fx, &unit) {
            continue;
        }
        if running {
            let name = service::unit_name(component);
            // A unit that is already stopped or was never enabled is fine.
            let _ = fx.run(
                CommandKind::Mutate,
                "systemctl",
                &["disable", "--now", &name],
            );
            println!("[reset] Stopped and disabled {name}");
        }
        fx.remove_file(Path::new(&unit))?;
        let env = service::env_path(component);
        if ours(fx, &env) {
            fx.remove_file(Path::new(&env))?;
        }
        println!("[reset] Deleted {unit} and {env}");
        removed = true;
    }
    if removed && running {
        systemctl(fx, &["daemon-reload"])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(image: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "spec": {"containers": [{"name": "etcd", "image": image}]}
        }))
        .unwrap()
    }

    #[test]
    fn the_binary_version_comes_from_the_image_tag() {
        assert_eq!(
            binary_version(&pod("registry.k8s.io/etcd:3.5.15-0")),
            "v3.5.15"
        );
        assert_eq!(
            binary_version(&pod("registry.k8s.io/kube-apiserver:v1.31.2")),
            "v1.31.2"
        );
        assert_eq!(
            binary_version(&pod("localhost:5000/kube-apiserver:v1.31.2")),
            "v1.31.2"
        );
    }

    #[test]
    fn an_unknown_flag_value_is_an_error_naming_the_flag() {
        let e = resolve_mode(None, Some("containers"), "flags")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("control-plane-mode") && e.contains("containers"),
            "{e}"
        );
        let c = resolve_mode(None, Some("systemd"), "flags").unwrap();
        assert!(c.systemd());
    }
}
