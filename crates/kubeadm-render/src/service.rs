//! The control plane as systemd services (`controlPlaneMode: systemd`): one unit per component
//! and one environment file holding its flags, both built from the component's static Pod, so
//! the flags a service runs with are exactly the ones the manifest would carry (patches
//! included) and the two modes cannot drift apart.
//!
//! The unit is `/etc/systemd/system/<component>.service`; its `ExecStart=` is the binary and
//! `$<COMPONENT>_ARGS`, a variable of `/etc/kubernetes/<component>.env` that systemd splits at
//! whitespace into one argument per flag. Hardening options keep the process off what it does
//! not need: the file system is read-only to it but for the host paths its Pod mounts
//! writable (etcd's data directory, the controller-manager's flex-volume directory).

use k8s_openapi::api::core::v1::Pod;

use crate::RenderError;
use crate::systemd::UNIT_DIR;

/// Where the environment files go (beside the kubeconfigs kubeadm owns).
pub const ENV_DIR: &str = "/etc/kubernetes";
/// The annotation a control-plane Node in this mode carries with the Kubernetes version its
/// services run (no mirror Pod shows their images): `upgrade` reads it to tell whether every
/// control-plane node is upgraded before it upgrades the addons, and sets it.
pub const NODE_VERSION_ANNOTATION: &str = "kubeadm-rs.io/control-plane-version";

/// First line of every file written here: how `reset` and `upgrade` recognise ours.
pub const MARKER: &str = "# Written by kubeadm-rs (controlPlaneMode: systemd)";

/// The components run as services, in start order (etcd first: the API server needs it).
pub const COMPONENTS: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

/// The host path of a component's unit.
pub fn unit_path(component: &str) -> String {
    format!("{UNIT_DIR}/{component}.service")
}

/// The host path of a component's environment file.
pub fn env_path(component: &str) -> String {
    format!("{ENV_DIR}/{component}.env")
}

/// The unit's name (`kube-apiserver.service`).
pub fn unit_name(component: &str) -> String {
    format!("{component}.service")
}

/// The variable holding a component's flags: `KUBE_APISERVER_ARGS`, and `KUBEADM_ETCD_ARGS`
/// for etcd, which reads every `ETCD_*` variable of its environment as a flag (and warns about
/// one that names none).
pub fn args_variable(component: &str) -> String {
    let name = format!("{}_ARGS", component.replace('-', "_").to_ascii_uppercase());
    if component == "etcd" {
        format!("KUBEADM_{name}")
    } else {
        name
    }
}

/// A component's two files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFiles {
    /// The component (`kube-apiserver`).
    pub component: String,
    /// The binary `ExecStart=` runs (absolute).
    pub binary: String,
    /// The flags, one per element, as the Pod's container carries them.
    pub args: Vec<String>,
    /// The unit's text.
    pub unit: String,
    /// The environment file's text.
    pub env: String,
}

fn service_error(component: &str, message: String) -> RenderError {
    RenderError::Service {
        component: component.to_string(),
        message,
    }
}

/// systemd splits `$VAR` at whitespace and the environment file is read with shell-like
/// quoting, so a value holding whitespace, a quote, a backslash or a `$` cannot travel as one
/// flag: refused, naming the flag, rather than mangled.
fn check_value(component: &str, what: &str, value: &str) -> Result<(), RenderError> {
    match value
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\' | '$'))
    {
        Some(c) => Err(service_error(
            component,
            format!(
                "{what} holds {c:?}, which a systemd environment file cannot carry inside one flag: {value:?}"
            ),
        )),
        None => Ok(()),
    }
}

/// The unit and environment file of the component `pod` runs, with the binary taken from
/// `binary_dir`. The Pod's first container gives the program (its command's first word), the
/// flags (the rest of the command, then `args`) and the environment (proxy variables, extra
/// envs); hostPath volumes mounted writable become `ReadWritePaths=`.
pub fn component_service(pod: &Pod, binary_dir: &str) -> Result<ServiceFiles, RenderError> {
    let name = pod
        .metadata
        .name
        .clone()
        .unwrap_or_else(|| "component".into());
    let spec = pod
        .spec
        .as_ref()
        .ok_or_else(|| service_error(&name, "the Pod has no spec".into()))?;
    let container = spec
        .containers
        .first()
        .ok_or_else(|| service_error(&name, "the Pod has no container".into()))?;
    let component = container.name.clone();
    let mut words = container.command.clone().unwrap_or_default();
    words.extend(container.args.clone().unwrap_or_default());
    let Some((program, flags)) = words.split_first() else {
        return Err(service_error(
            &component,
            "the container has no command".into(),
        ));
    };
    let program = program.rsplit('/').next().unwrap_or(program);
    if program.is_empty() || program.contains(char::is_whitespace) {
        return Err(service_error(
            &component,
            format!("the program {program:?} is not a binary name"),
        ));
    }
    for flag in flags {
        check_value(&component, "a flag", flag)?;
    }
    let mut env_lines = Vec::new();
    for var in container.env.iter().flatten() {
        let Some(value) = &var.value else {
            return Err(service_error(
                &component,
                format!(
                    "the environment variable {} takes its value from the cluster (valueFrom), which a service cannot",
                    var.name
                ),
            ));
        };
        if !var
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(service_error(
                &component,
                format!(
                    "the environment variable name {:?} is not a plain name",
                    var.name
                ),
            ));
        }
        check_value(&component, &format!("the variable {}", var.name), value)?;
        env_lines.push(format!("{}=\"{value}\"", var.name));
    }
    let variable = args_variable(&component);
    let env = format!(
        "{MARKER}: the flags of {component}, the same as its static Pod would carry.\n{variable}=\"{}\"\n{}",
        flags.join(" "),
        env_lines
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );
    let binary = format!("{}/{program}", binary_dir.trim_end_matches('/'));
    let writable = writable_host_paths(pod);
    let unit = unit_text(&component, &binary, &variable, &writable);
    Ok(ServiceFiles {
        component,
        binary,
        args: flags.to_vec(),
        unit,
        env,
    })
}

/// Host paths of the Pod's hostPath volumes that its first container mounts writable.
fn writable_host_paths(pod: &Pod) -> Vec<String> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    let mounts = spec
        .containers
        .first()
        .and_then(|c| c.volume_mounts.clone())
        .unwrap_or_default();
    let mut paths: Vec<String> = mounts
        .iter()
        .filter(|m| !m.read_only.unwrap_or(false))
        .filter_map(|m| {
            spec.volumes
                .iter()
                .flatten()
                .find(|v| v.name == m.name)?
                .host_path
                .as_ref()
                .map(|h| h.path.clone())
        })
        .filter(|p| p.starts_with('/') && !p.contains(char::is_whitespace))
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// What each component is, for `Description=` and `Documentation=`.
fn describe(component: &str) -> (&'static str, &'static str) {
    match component {
        "etcd" => (
            "etcd key-value store of the Kubernetes control plane",
            "https://etcd.io/docs/",
        ),
        "kube-apiserver" => (
            "Kubernetes API server",
            "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-apiserver/",
        ),
        "kube-controller-manager" => (
            "Kubernetes controller manager",
            "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-controller-manager/",
        ),
        "kube-scheduler" => (
            "Kubernetes scheduler",
            "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-scheduler/",
        ),
        _ => (
            "Kubernetes control-plane component",
            "https://kubernetes.io/docs/",
        ),
    }
}

fn unit_text(component: &str, binary: &str, variable: &str, writable: &[String]) -> String {
    let (description, docs) = describe(component);
    // etcd tells systemd when it serves (sd_notify); the Kubernetes components do not.
    let kind = if component == "etcd" {
        "notify"
    } else {
        "simple"
    };
    let after = if component == "etcd" {
        "network-online.target".to_string()
    } else {
        "network-online.target etcd.service".to_string()
    };
    let rw: String = writable
        .iter()
        .map(|p| format!("ReadWritePaths=-{p}\n"))
        .collect();
    format!(
        "{MARKER}: {component}, with the flags of {env}.\n\
         [Unit]\n\
         Description={description}\n\
         Documentation={docs}\n\
         After={after}\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type={kind}\n\
         EnvironmentFile={env}\n\
         ExecStart={binary} ${variable}\n\
         Restart=always\n\
         RestartSec=5\n\
         LimitNOFILE=65536\n\
         NoNewPrivileges=yes\n\
         ProtectSystem=strict\n\
         ProtectHome=yes\n\
         PrivateTmp=yes\n\
         ProtectKernelModules=yes\n\
         ProtectKernelLogs=yes\n\
         ProtectControlGroups=yes\n\
         ProtectClock=yes\n\
         ProtectHostname=yes\n\
         RestrictSUIDSGID=yes\n\
         RestrictRealtime=yes\n\
         LockPersonality=yes\n\
         SystemCallArchitectures=native\n\
         {rw}\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        env = env_path(component),
    )
}

/// The program of a unit's `ExecStart=` line (what `upgrade` swaps and `rollback` restores).
pub fn exec_program(unit: &str) -> Option<String> {
    unit.lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_string)
}

/// True when `text` (a unit or an environment file) was written by this mode.
pub fn is_ours(text: &str) -> bool {
    text.starts_with(MARKER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(command: serde_json::Value, env: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "kube-apiserver", "namespace": "kube-system"},
            "spec": {
                "containers": [{
                    "name": "kube-apiserver", "image": "registry.k8s.io/kube-apiserver:v1.31.0",
                    "command": command, "env": env,
                    "volumeMounts": [
                        {"name": "k8s-certs", "mountPath": "/etc/kubernetes/pki", "readOnly": true},
                        {"name": "audit", "mountPath": "/var/log/kubernetes/audit"}
                    ]
                }],
                "volumes": [
                    {"name": "k8s-certs", "hostPath": {"path": "/etc/kubernetes/pki", "type": "DirectoryOrCreate"}},
                    {"name": "audit", "hostPath": {"path": "/var/log/kubernetes/audit", "type": "DirectoryOrCreate"}}
                ]
            }
        }))
        .unwrap()
    }

    #[test]
    fn the_flags_go_to_the_env_file_and_writable_mounts_to_read_write_paths() {
        let p = pod(
            json!([
                "kube-apiserver",
                "--advertise-address=10.0.0.1",
                "--secure-port=6443"
            ]),
            json!([{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}]),
        );
        let s = component_service(&p, "/opt/k8s/v1.31.0/bin/").unwrap();
        assert_eq!(s.binary, "/opt/k8s/v1.31.0/bin/kube-apiserver");
        assert!(s.env.contains(
            "\nKUBE_APISERVER_ARGS=\"--advertise-address=10.0.0.1 --secure-port=6443\"\n"
        ));
        assert!(s.env.contains("\nHTTPS_PROXY=\"http://proxy:3128\"\n"));
        assert!(
            s.unit
                .contains("\nExecStart=/opt/k8s/v1.31.0/bin/kube-apiserver $KUBE_APISERVER_ARGS\n")
        );
        assert!(
            s.unit
                .contains("\nEnvironmentFile=/etc/kubernetes/kube-apiserver.env\n")
        );
        assert!(
            s.unit
                .contains("\nReadWritePaths=-/var/log/kubernetes/audit\n")
        );
        assert!(!s.unit.contains("ReadWritePaths=-/etc/kubernetes/pki"));
        assert!(is_ours(&s.unit) && is_ours(&s.env));
        assert_eq!(
            exec_program(&s.unit).as_deref(),
            Some("/opt/k8s/v1.31.0/bin/kube-apiserver")
        );
    }

    #[test]
    fn a_flag_with_a_space_is_refused_naming_it() {
        let p = pod(
            json!(["kube-apiserver", "--tls-cipher-suites=a b"]),
            json!([]),
        );
        let e = component_service(&p, "/usr/local/bin")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("kube-apiserver") && e.contains("--tls-cipher-suites=a b"),
            "{e}"
        );
    }

    #[test]
    fn a_variable_from_the_cluster_is_refused() {
        let p = pod(
            json!(["kube-apiserver"]),
            json!([{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]),
        );
        let e = component_service(&p, "/usr/local/bin")
            .unwrap_err()
            .to_string();
        assert!(e.contains("POD_IP"), "{e}");
    }

    #[test]
    fn args_variables_are_upper_case_with_underscores() {
        assert_eq!(
            args_variable("kube-controller-manager"),
            "KUBE_CONTROLLER_MANAGER_ARGS"
        );
        assert_eq!(args_variable("etcd"), "KUBEADM_ETCD_ARGS");
    }
}
