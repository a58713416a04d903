//! `join phase kubelet-start`: bootstrap-kubelet.conf, the CA and the kubelet's files, then the
//! waits for the kubelet's healthz and its TLS bootstrap.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kubeadm_effects::{Content, Effects};
use kubeadm_workflow::Phase;

use super::{BOOTSTRAP_KUBELET_CONF, JoinContext, KUBELET_CONF};
use crate::error::{Error, Result};
use crate::{apiclient, waiter};

/// `kubelet-start`.
pub fn phase() -> Phase<JoinContext, Error> {
    Phase::leaf(
        "kubelet-start",
        "Write kubelet settings, certificates and (re)start the kubelet",
        run,
    )
    .flags(
        &[
            super::DISCOVERY_FLAGS,
            &["cri-socket", "node-name", "patches"],
        ]
        .concat(),
    )
}

/// True when kubelet.conf exists, parses and its client certificate is in place.
fn kubelet_conf_ready(fx: &dyn Effects) -> bool {
    let Ok(Some(text)) = fx.read_to_string(Path::new(KUBELET_CONF)) else {
        return false;
    };
    match kubeadm_pki::kubeconfig::parse(KUBELET_CONF, &text) {
        Ok(kc) if !kc.client_cert_pem.is_empty() => true,
        Ok(kc) if !kc.client_cert_file.is_empty() => fx.exists(Path::new(&kc.client_cert_file)),
        _ => false,
    }
}

const JOIN_FAIL_HELP: &str = "the kubelet is not running or is unhealthy (e.g. required cgroups disabled); on systemd hosts look with `systemctl status kubelet` and `journalctl -xeu kubelet`";

pub(super) fn run(ctx: &mut JoinContext) -> Result<()> {
    // Everything that can refuse the cluster runs before the first write.
    let kc = ctx.bootstrap_kubeconfig()?;
    let cfg = ctx.init_config()?;
    let info = ctx.cluster()?;
    let node_name = cfg.node_name().to_string();
    // Reads are real under --dry-run too: a dry run refuses what a real run would refuse.
    {
        let rt = apiclient::runtime()?;
        let ready = rt.block_on(async {
            let client = apiclient::client_from_kubeconfig(BOOTSTRAP_KUBELET_CONF, &kc).await?;
            let api: Api<Node> = Api::all(client);
            let node = apiclient::retry(&format!("get Node {node_name}"), 5, || {
                api.get_opt(&node_name)
            })
            .await?;
            Ok::<_, Error>(node.is_some_and(|n| {
                n.status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            }))
        })?;
        if ready {
            return Err(Error::with_hint(
                format!(
                    "a Node with name {node_name:?} and status \"Ready\" already exists in the cluster"
                ),
                "delete the existing Node (`kubectl delete node`) or join with another --node-name",
            ));
        }
    }
    let token = ctx.cfg.join.discovery.tls_bootstrap_token.clone();
    ctx.fx.write_file(
        Path::new(BOOTSTRAP_KUBELET_CONF),
        Content::Redacted {
            data: kc.clone().into_bytes(),
            shown: kc.replace(&token, &kubeadm_api::token::redact(&token)),
        },
        0o600,
    )?;
    let ca_path = PathBuf::from(&ctx.cfg.join.ca_cert_path);
    if !ctx.fx.exists(&ca_path) {
        if let Some(parent) = ca_path.parent().filter(|p| !ctx.fx.exists(p)) {
            ctx.fx.create_dir_all(parent, 0o755)?;
        }
        ctx.fx.write_file(
            &ca_path,
            Content::Plain(info.ca_pem.clone().into_bytes()),
            0o644,
        )?;
    }
    ctx.with_init(crate::phases::init::kubelet_start::run_kubelet_start)?;
    // The written config.yaml carries the operator's patches (e.g. another healthzPort).
    let written: serde_json::Value = ctx
        .fx
        .read_to_string(Path::new(kubeadm_render::kubelet::CONFIG_PATH))?
        .and_then(|t| serde_saphyr::from_str(&t).ok())
        .unwrap_or_else(|| cfg.kubelet.clone());
    let fx = ctx.fx.as_ref();
    match waiter::kubelet_endpoint(&written) {
        // As init: `healthzPort: 0` turns the kubelet's healthz off, so there is nothing to ask.
        None => println!(
            "[kubelet-check] Skipping the kubelet health check because the healthz port is set to 0"
        ),
        Some(kubelet) => {
            let timeout = ctx.timeout(|t| t.kubelet_health_check);
            let url = &kubelet.url;
            println!(
                "[kubelet-check] Waiting for a healthy kubelet at {url}. This can take up to {timeout:?}"
            );
            let rt = apiclient::runtime()?;
            let took = fx
                .wait_until(&format!("a healthy kubelet at {url}"), timeout, &mut || {
                    rt.block_on(waiter::probe(url)).is_ok()
                })
                .ok_or_else(|| {
                    Error::with_hint(
                        format!("the kubelet at {url} did not become healthy within {timeout:?}"),
                        JOIN_FAIL_HELP,
                    )
                })?;
            println!(
                "[kubelet-check] The kubelet is healthy after {:.3}s",
                took.as_secs_f64()
            );
        }
    }
    println!("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap");
    let tls_timeout = ctx.timeout(|t| t.tls_bootstrap);
    fx.wait_until(
        &format!("the kubelet to write {KUBELET_CONF} (TLS bootstrap)"),
        tls_timeout,
        &mut || kubelet_conf_ready(fx),
    )
    .ok_or_else(|| {
        Error::with_hint(
            format!(
                "the kubelet did not write {KUBELET_CONF} (TLS bootstrap) within {tls_timeout:?}"
            ),
            JOIN_FAIL_HELP,
        )
    })?;
    // The bootstrap credential has done its job; don't leave it on disk.
    ctx.fx.remove_file(Path::new(BOOTSTRAP_KUBELET_CONF))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_healthz_address_from_config() {
        let url = |v: serde_json::Value| waiter::kubelet_endpoint(&v).map(|e| e.url);
        assert_eq!(
            url(serde_json::json!({})).as_deref(),
            Some("http://127.0.0.1:10248/healthz")
        );
        assert_eq!(
            url(serde_json::json!({"healthzBindAddress": "::1", "healthzPort": 20248})).as_deref(),
            Some("http://[::1]:20248/healthz")
        );
        // Join skips the check for `healthzPort: 0`, as init does.
        assert_eq!(url(serde_json::json!({"healthzPort": 0})), None);
    }
}
