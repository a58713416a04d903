//! `reset phase remove-etcd-member`: this node's member removed from the local etcd cluster.

use std::path::Path;

use kubeadm_workflow::Phase;

use super::ResetContext;
use crate::error::{Error, Result};
use crate::etcd_membership::{self, Membership};

/// `remove-etcd-member`.
pub fn phase() -> Phase<ResetContext, Error> {
    Phase::leaf("remove-etcd-member", "Remove a local etcd member.", run).flags(&[
        "config",
        "kubeconfig",
        "dry-run",
    ])
}

/// The flag values of a container command line (`--name=value`).
fn flag<'a>(command: &'a [serde_json::Value], name: &str) -> Option<&'a str> {
    let prefix = format!("--{name}=");
    command
        .iter()
        .filter_map(|a| a.as_str())
        .find_map(|a| a.strip_prefix(prefix.as_str()))
}

/// Removes this node's member from the local etcd cluster (found from the etcd manifest), using
/// the healthcheck-client certificate as upstream does. Not fatal: an unreachable etcd is
/// reported with what to run by hand.
pub(super) fn run(ctx: &mut ResetContext) -> Result<()> {
    let fx = ctx.fx.as_ref();
    let manifest = Path::new("/etc/kubernetes/manifests/etcd.yaml");
    let command: Vec<serde_json::Value> = match fx.read_to_string(manifest)? {
        Some(text) => {
            let pod: serde_json::Value = serde_saphyr::from_str(&text).map_err(|e| {
                Error::with_hint(
                    format!("cannot parse {}: {e}", manifest.display()),
                    "fix or remove the etcd manifest",
                )
            })?;
            pod["spec"]["containers"][0]["command"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        }
        // controlPlaneMode: systemd keeps the same flags in etcd's environment file.
        None => match crate::services::flags(fx, "etcd")? {
            Some(flags) => flags.into_iter().map(serde_json::Value::String).collect(),
            None => {
                println!("[reset] No etcd config found. Assuming external etcd");
                println!("[reset] Please, manually reset etcd to prevent further issues");
                ctx.external_etcd_said = true;
                return Ok(());
            }
        },
    };
    let (Some(peer), Some(client)) = (
        flag(&command, "initial-advertise-peer-urls"),
        flag(&command, "advertise-client-urls"),
    ) else {
        println!(
            "[reset] WARNING: the etcd manifest names no peer or client URL; remove this etcd member by hand with etcdctl"
        );
        return Ok(());
    };
    let client = client.split(',').next().unwrap_or(client).to_string();
    let dir = Path::new(if ctx.cfg.certificates_dir.is_empty() {
        kubeadm_api::defaults::DEFAULT_CERTIFICATES_DIR
    } else {
        &ctx.cfg.certificates_dir
    });
    let timeout = kubeadm_api::defaults::timeout(ctx.cfg.timeouts.as_ref(), |t| t.etcd_api_call);
    let dry_run = ctx.opts.dry_run;
    let outcome = (|| -> Result<String> {
        let endpoints = std::slice::from_ref(&client);
        let connect = || -> Result<kubeadm_etcd::EtcdClient> {
            let tls =
                etcd_membership::load_tls(fx, dir, "remove this etcd member by hand with etcdctl")?;
            etcd_membership::client(endpoints, &tls).map_err(|source| Error::Etcd {
                action: format!("connect to etcd at {client}"),
                source,
            })
        };
        // A dry run reads the member list as a real run does (and fails as it would), and
        // records the removal instead of making it.
        let etcd: Box<dyn Membership> = if dry_run {
            Box::new(etcd_membership::Recording::new(Some(connect()?)))
        } else {
            Box::new(connect()?)
        };
        let members = etcd.member_list().map_err(|source| Error::Etcd {
            action: "list the etcd members".into(),
            source,
        })?;
        let Some(me) = members
            .iter()
            .find(|m| m.peer_urls.iter().any(|u| u == peer))
        else {
            return Ok(format!(
                "[reset] This node's etcd member ({peer}) is not in the cluster any more"
            ));
        };
        if members.len() == 1 {
            return Ok(
                "[reset] Not removing the etcd member: it is the only member of the cluster".into(),
            );
        }
        etcd.remove_when_ready(me.id, timeout)
            .map_err(|source| Error::Etcd {
                action: format!("remove the etcd member {}", me.name),
                source,
            })?;
        Ok(format!(
            "[reset] Removed the etcd member {} ({peer}); {} member(s) remain",
            me.name,
            members.len() - 1
        ))
    })();
    match outcome {
        Ok(line) => println!("{line}"),
        Err(e) => println!(
            "[reset] WARNING: failed to remove the etcd member: {e}; remove it by hand with `etcdctl member remove`"
        ),
    }
    Ok(())
}
