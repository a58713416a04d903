//! `join phase kubelet-start`: bootstrap-kubelet.conf, the CA and the kubelet's files, then the
//! waits for the kubelet's healthz and its TLS bootstrap.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kubeadm_effects::{Content, Effects};
use kubeadm_workflow::Phase;

use super::{BOOTSTRAP_KUBELET_CONF, JoinContext, KUBELET_CONF};
use crate::apiclient;
use crate::error::{Error, Result};

/// How often waits look again.
const WAIT_INTERVAL: Duration = Duration::from_millis(200);

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

/// The kubelet's healthz address from its configuration (upstream waits there).
fn kubelet_healthz(config: &serde_json::Value) -> String {
    let addr = config["healthzBindAddress"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("127.0.0.1");
    let port = config["healthzPort"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(10248);
    kubeadm_api::net::join_host_port(addr, port)
}

/// A plain-HTTP `GET /healthz` answered 200 (the kubelet's healthz is plain HTTP on loopback).
fn healthz_ok(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET /healthz HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < head.len() {
        match s.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    let status = String::from_utf8_lossy(&head[..got]);
    status.starts_with("HTTP/1.") && status.get(9..12) == Some("200")
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

fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if ready() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(WAIT_INTERVAL);
    }
}

pub(super) fn run(ctx: &mut JoinContext) -> Result<()> {
    // Everything that can refuse the cluster runs before the first write.
    let kc = ctx.bootstrap_kubeconfig()?;
    let cfg = ctx.init_config()?;
    let info = ctx.cluster()?;
    let node_name = cfg.node_name().to_string();
    if !ctx.opts.dry_run {
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
    if ctx.opts.dry_run {
        println!("[kubelet-start] Would wait for the kubelet to perform the TLS Bootstrap");
        return Ok(());
    }
    // The written config.yaml carries the operator's patches (e.g. another healthzPort).
    let written: serde_json::Value = ctx
        .fx
        .read_to_string(Path::new(kubeadm_render::kubelet::CONFIG_PATH))?
        .and_then(|t| serde_saphyr::from_str(&t).ok())
        .unwrap_or_else(|| cfg.kubelet.clone());
    let healthz = kubelet_healthz(&written);
    let health_timeout = ctx.timeout(|t| t.kubelet_health_check, 240);
    println!(
        "[kubelet-check] Waiting for a healthy kubelet at http://{healthz}/healthz. This can take up to {:?}",
        health_timeout
    );
    let took = wait_until(health_timeout, || healthz_ok(&healthz)).ok_or_else(|| {
        Error::with_hint(
            format!("the kubelet at http://{healthz}/healthz did not become healthy within {health_timeout:?}"),
            JOIN_FAIL_HELP,
        )
    })?;
    println!(
        "[kubelet-check] The kubelet is healthy after {:.3}s",
        took.as_secs_f64()
    );
    println!("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap");
    let tls_timeout = ctx.timeout(|t| t.tls_bootstrap, 300);
    let fx = ctx.fx.as_ref();
    wait_until(tls_timeout, || kubelet_conf_ready(fx)).ok_or_else(|| {
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
        assert_eq!(kubelet_healthz(&serde_json::json!({})), "127.0.0.1:10248");
        assert_eq!(
            kubelet_healthz(
                &serde_json::json!({"healthzBindAddress": "::1", "healthzPort": 20248})
            ),
            "[::1]:20248"
        );
    }
}
