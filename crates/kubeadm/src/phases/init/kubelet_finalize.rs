//! kubelet-finalize: after the kubelet's TLS bootstrap, point kubelet.conf's user at the
//! rotating `kubelet-client-current.pem` instead of the embedded client certificate, so the
//! kubelet keeps working when it rotates its certificate (upstream's
//! `enable-client-cert-rotation`, called `experimental-cert-rotation` before 1.31).

use std::path::{Path, PathBuf};

use kubeadm_effects::{CommandKind, Content};
use kubeadm_workflow::Phase;
use serde_json::Value;

use super::InitContext;
use super::api_session::read_planned;
use crate::error::{Error, Result};

/// Where the kubeadm-written kubelet kubeconfig lives.
pub const KUBELET_CONF: &str = "/etc/kubernetes/kubelet.conf";

/// The kubelet's certificate directory unless `--cert-dir` is given to it.
const KUBELET_PKI_DIR: &str = "/var/lib/kubelet/pki";

/// The symbolic link the kubelet keeps pointing at its current client certificate and key.
const CURRENT_PEM: &str = "kubelet-client-current.pem";

/// The `kubelet-finalize` group, placed after bootstrap-token.
pub fn phase() -> Phase<InitContext, Error> {
    Phase::group(
        "kubelet-finalize",
        "Updates settings relevant to the kubelet after TLS bootstrap",
        vec![
            Phase::leaf(
                "enable-client-cert-rotation",
                "Enable kubelet client certificate rotation",
                enable_client_cert_rotation,
            )
            .aliases(&["experimental-cert-rotation"])
            .flags(&["cert-dir", "config", "dry-run"]),
        ],
    )
}

/// `/var/lib/kubelet/pki/kubelet-client-current.pem`, or under the kubelet's `--cert-dir`
/// given in `nodeRegistration.kubeletExtraArgs`.
pub fn current_pem(ctx: &InitContext) -> PathBuf {
    let dir = ctx
        .cfg
        .init
        .node_registration
        .kubelet_extra_args
        .iter()
        .rev()
        .find(|a| a.name == "cert-dir")
        .map(|a| a.value.clone())
        .unwrap_or_else(|| KUBELET_PKI_DIR.to_string());
    Path::new(&dir).join(CURRENT_PEM)
}

fn corrupt(detail: String) -> Error {
    Error::with_hint(
        detail,
        "re-create it with `kubeadm init phase kubeconfig kubelet` after moving the broken file away",
    )
}

/// Rewrites a kubeconfig so that its current context's user reads its client certificate and
/// key from `pem` (one file holding both) instead of embedded data.
pub fn point_user_at(text: &str, pem: &str) -> Result<String> {
    let mut kc: Value = serde_saphyr::from_str(text)
        .map_err(|e| corrupt(format!("could not load {KUBELET_CONF:?}: {e}")))?;
    let current = kc
        .get("current-context")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            corrupt(format!(
                "the file {KUBELET_CONF:?} does not have current context set"
            ))
        })?
        .to_string();
    let user = kc
        .get("contexts")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("name").and_then(Value::as_str) == Some(&current))
        })
        .ok_or_else(|| {
            corrupt(format!("the file {KUBELET_CONF:?} is not a valid kubeconfig: {current:?} set as current-context, but not found in context list"))
        })?
        .pointer("/context/user")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            corrupt(format!(
                "the file {KUBELET_CONF:?} is not a valid kubeconfig: empty username for current context"
            ))
        })?
        .to_string();
    let entry = kc
        .get_mut("users")
        .and_then(Value::as_array_mut)
        .and_then(|us| {
            us.iter_mut()
                .find(|u| u.get("name").and_then(Value::as_str) == Some(&user))
        })
        .and_then(|u| u.get_mut("user"))
        .and_then(Value::as_object_mut)
        .ok_or_else(|| {
            corrupt(format!(
                "the file {KUBELET_CONF:?} does not contain authentication for user {user:?}"
            ))
        })?;
    entry.remove("client-certificate-data");
    entry.remove("client-key-data");
    entry.insert("client-certificate".into(), Value::String(pem.into()));
    entry.insert("client-key".into(), Value::String(pem.into()));
    kubeadm_api::encode::to_yaml(&kc).map_err(|e| Error::msg(e.to_string()))
}

fn enable_client_cert_rotation(ctx: &mut InitContext) -> Result<()> {
    let pem = current_pem(ctx);
    if !ctx.fx.exists(&pem) {
        tracing::info!(
            "[kubelet-finalize] Assuming that kubelet client certificate rotation is disabled: {} does not exist",
            pem.display()
        );
        return Ok(());
    }
    tracing::info!(
        "[kubelet-finalize] Assuming that kubelet client certificate rotation is enabled: found {:?}",
        pem.display().to_string()
    );
    println!(
        "[kubelet-finalize] Updating {KUBELET_CONF:?} to point to a rotatable kubelet client certificate and key"
    );
    let path = Path::new(KUBELET_CONF);
    let Some(text) = read_planned(
        ctx,
        path,
        "nothing to update",
        "write it with `kubeadm init phase kubeconfig kubelet`",
    )?
    else {
        return Ok(());
    };
    let text =
        String::from_utf8(text).map_err(|_| Error::msg(format!("{KUBELET_CONF} is not UTF-8")))?;
    let updated = point_user_at(&text, &pem.display().to_string())?;
    // No key material is left in the file: it can be shown in full.
    ctx.fx
        .write_file(path, Content::Plain(updated.into_bytes()), 0o600)?;
    // The kubelet reads its kubeconfig at start.
    tracing::info!(
        "[kubelet-finalize] Restarting the kubelet to enable client certificate rotation"
    );
    if !ctx.fx.exists(Path::new("/run/systemd/system")) {
        println!(
            "[kubelet-finalize] WARNING: no supported init system detected (systemd is not running): restart the kubelet yourself"
        );
        return Ok(());
    }
    match ctx
        .fx
        .run(CommandKind::Mutate, "systemctl", &["restart", "kubelet"])
    {
        Ok(out) if out.success() => {}
        Ok(out) => println!(
            "[kubelet-finalize] WARNING: unable to restart the kubelet service: {}",
            out.stderr.trim()
        ),
        Err(e) => {
            println!("[kubelet-finalize] WARNING: unable to restart the kubelet service: {e}")
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KC: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: kubernetes\n  cluster:\n    server: https://10.0.0.1:6443\n    certificate-authority-data: Q0E=\ncontexts:\n- name: system:node:cp-1@kubernetes\n  context:\n    cluster: kubernetes\n    user: system:node:cp-1\ncurrent-context: system:node:cp-1@kubernetes\npreferences: {}\nusers:\n- name: other\n  user:\n    client-key-data: T1RIRVI=\n- name: system:node:cp-1\n  user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\n";

    #[test]
    fn points_the_current_user_at_the_pem_and_drops_the_data() {
        let out = point_user_at(KC, "/var/lib/kubelet/pki/kubelet-client-current.pem").unwrap();
        let v: Value = serde_saphyr::from_str(&out).unwrap();
        let user = &v["users"][1]["user"];
        assert_eq!(
            user["client-certificate"],
            "/var/lib/kubelet/pki/kubelet-client-current.pem"
        );
        assert_eq!(
            user["client-key"],
            "/var/lib/kubelet/pki/kubelet-client-current.pem"
        );
        assert!(user.get("client-key-data").is_none(), "{out}");
        assert!(user.get("client-certificate-data").is_none(), "{out}");
        // Other users and the cluster are left alone.
        assert_eq!(v["users"][0]["user"]["client-key-data"], "T1RIRVI=");
        assert_eq!(
            v["clusters"][0]["cluster"]["certificate-authority-data"],
            "Q0E="
        );
        // Idempotent.
        assert_eq!(
            point_user_at(&out, "/var/lib/kubelet/pki/kubelet-client-current.pem").unwrap(),
            out
        );
    }

    #[test]
    fn broken_kubeconfigs_are_named() {
        let no_ctx = KC.replace("current-context: system:node:cp-1@kubernetes\n", "");
        let e = point_user_at(&no_ctx, "/p").unwrap_err().to_string();
        assert!(e.contains("does not have current context set"), "{e}");
        let no_user = KC.replace(
            "- name: system:node:cp-1\n  user:",
            "- name: someone\n  user:",
        );
        let e = point_user_at(&no_user, "/p").unwrap_err().to_string();
        assert!(
            e.contains("does not contain authentication for user \"system:node:cp-1\""),
            "{e}"
        );
    }
}
