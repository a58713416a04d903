//! `kubeadm etcd member list|remove`, through the membership client join and reset use.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::{Connected, MemberListArgs, MemberRemoveArgs, Output, connect};
use crate::commands::init::effects;
use crate::error::{Error, Result};
use crate::etcd_membership::{Membership, Recording};

/// `kubeadm etcd member list`.
pub fn list(root: &Path, args: MemberListArgs) -> Result<()> {
    let fx = effects(root, true);
    let etcd = connect(fx.as_ref(), &args.connection)?;
    let members = etcd.client.member_list().map_err(|e| etcd.about.err(e))?;
    match args.output {
        Output::Json => {
            let list: Vec<_> = members
                .iter()
                .map(|m| {
                    json!({"id": format!("{:x}", m.id), "name": m.name, "peerURLs": m.peer_urls,
                           "clientURLs": m.client_urls, "isLearner": m.is_learner})
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({ "members": list }))
                    .map_err(|e| Error::msg(e.to_string()))?
            );
        }
        Output::Text => {
            println!(
                "{:<18} {:<20} {:<8} {:<32} CLIENT URLS",
                "ID", "NAME", "LEARNER", "PEER URLS"
            );
            for m in &members {
                println!(
                    "{:<18} {:<20} {:<8} {:<32} {}",
                    format!("{:x}", m.id),
                    if m.name.is_empty() {
                        "(unstarted)"
                    } else {
                        &m.name
                    },
                    if m.is_learner { "yes" } else { "no" },
                    m.peer_urls.join(","),
                    m.client_urls.join(",")
                );
            }
        }
    }
    Ok(())
}

/// `kubeadm etcd member remove ID|NAME`.
pub fn remove(root: &Path, args: MemberRemoveArgs) -> Result<()> {
    let fx = effects(root, args.dry_run);
    let fx = fx.as_ref();
    let Connected { client, about } = connect(fx, &args.connection)?;
    // The same membership code as join and reset; a dry run reads the real list and records
    // the removal through the recording twin.
    let etcd: Box<dyn Membership> = if fx.is_dry_run() {
        Box::new(Recording::new(Some(client)))
    } else {
        Box::new(client)
    };
    let members = etcd.member_list().map_err(|e| about.err(e))?;
    let wanted = args.member.trim();
    let found = members
        .iter()
        .find(|m| m.name == wanted || u64::from_str_radix(wanted, 16).is_ok_and(|id| id == m.id));
    let Some(m) = found else {
        let known: Vec<String> = members
            .iter()
            .map(|m| format!("{:x} ({})", m.id, m.name))
            .collect();
        return Err(Error::with_hint(
            format!("no etcd member {wanted:?} (members: {})", known.join(", ")),
            "name a member by the id or name `kubeadm etcd member list` prints",
        ));
    };
    if members.len() == 1 {
        return Err(Error::with_hint(
            format!(
                "{:x} ({}) is the only etcd member: removing it would destroy the cluster",
                m.id, m.name
            ),
            "to start over use `kubeadm reset`; to recover from a snapshot use `kubeadm etcd snapshot restore`",
        ));
    }
    let left = etcd
        .remove_when_ready(m.id, Duration::from_secs(60))
        .map_err(|e| about.err(e))?;
    println!(
        "[etcd] Removed member {:x} ({}); {} member(s) remain",
        m.id,
        m.name,
        left.len()
    );
    Ok(())
}
