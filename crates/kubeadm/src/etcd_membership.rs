//! etcd membership as join and reset change it, behind one trait with two implementations:
//! the real client ([`kubeadm_etcd::EtcdClient`]) and, for `--dry-run`, [`Recording`], which
//! prints each change it would make and answers as etcd would (reading the real member list
//! when it can). Also the one loader of the etcd client TLS material kubeadm uses.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use kubeadm_effects::Effects;
use kubeadm_etcd::{EtcdClient, EtcdError, Member, MemberStatus, TlsFiles};

use crate::error::{Error, Result};

/// The membership calls of join's etcd phase and reset's remove-etcd-member.
pub trait Membership {
    /// The current members.
    fn member_list(&self) -> Result<Vec<Member>, EtcdError>;
    /// Adds a member (as a learner when `learner`), retrying within `within` while etcd is not
    /// ready for it; returns it and the new list.
    fn member_add_when_ready(
        &self,
        peer_url: &str,
        learner: bool,
        within: Duration,
    ) -> Result<(Member, Vec<Member>), EtcdError>;
    /// Waits within `within` until member `id` answers at `client_url` and its raft index is
    /// within `margin` of the leader's.
    fn wait_caught_up(
        &self,
        id: u64,
        client_url: &str,
        margin: u64,
        within: Duration,
    ) -> Result<MemberStatus, EtcdError>;
    /// Waits within `within` until the member at `client_url` reports itself healthy.
    fn wait_healthy_at(&self, client_url: &str, within: Duration) -> Result<(), EtcdError>;
    /// Promotes a learner once it has caught up, within `within`.
    fn promote_when_ready(&self, id: u64, within: Duration) -> Result<Vec<Member>, EtcdError>;
    /// Removes a member once the cluster allows it, within `within`.
    fn remove_when_ready(&self, id: u64, within: Duration) -> Result<Vec<Member>, EtcdError>;
}

impl Membership for EtcdClient {
    fn member_list(&self) -> Result<Vec<Member>, EtcdError> {
        EtcdClient::member_list(self)
    }
    fn member_add_when_ready(
        &self,
        peer_url: &str,
        learner: bool,
        within: Duration,
    ) -> Result<(Member, Vec<Member>), EtcdError> {
        EtcdClient::member_add_when_ready(self, peer_url, learner, within)
    }
    fn wait_caught_up(
        &self,
        id: u64,
        client_url: &str,
        margin: u64,
        within: Duration,
    ) -> Result<MemberStatus, EtcdError> {
        EtcdClient::wait_caught_up(self, id, client_url, margin, within)
    }
    fn wait_healthy_at(&self, client_url: &str, within: Duration) -> Result<(), EtcdError> {
        EtcdClient::wait_healthy_at(self, client_url, within)
    }
    fn promote_when_ready(&self, id: u64, within: Duration) -> Result<Vec<Member>, EtcdError> {
        EtcdClient::promote_when_ready(self, id, within)
    }
    fn remove_when_ready(&self, id: u64, within: Duration) -> Result<Vec<Member>, EtcdError> {
        EtcdClient::remove_when_ready(self, id, within)
    }
}

/// The dry-run twin: reads the member list from `reader` when there is one (else starts
/// empty), prints every change as `[dryrun] Would …` and applies it to its own copy only.
pub struct Recording {
    reader: Option<EtcdClient>,
    /// The members as they would be after the recorded changes (`None` until first read).
    members: Mutex<Option<Vec<Member>>>,
}

impl Recording {
    /// A recorder reading through `reader` (a real client) when given.
    pub fn new(reader: Option<EtcdClient>) -> Self {
        Recording {
            reader,
            members: Mutex::new(None),
        }
    }

    /// Runs `f` on the current member list (read once), returning its result.
    fn with_members<R>(&self, f: impl FnOnce(&mut Vec<Member>) -> R) -> Result<R, EtcdError> {
        let mut guard = self.members.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            let read = match &self.reader {
                Some(r) => r.member_list()?,
                None => Vec::new(),
            };
            *guard = Some(read);
        }
        let list = guard.get_or_insert_with(Vec::new);
        Ok(f(list))
    }
}

impl Membership for Recording {
    fn member_list(&self) -> Result<Vec<Member>, EtcdError> {
        self.with_members(|m| m.clone())
    }

    fn member_add_when_ready(
        &self,
        peer_url: &str,
        learner: bool,
        within: Duration,
    ) -> Result<(Member, Vec<Member>), EtcdError> {
        println!(
            "[dryrun] Would add the etcd member with peer URL {peer_url}{} (retried within {within:?} while etcd says the cluster is unhealthy)",
            if learner { " as a learner" } else { "" }
        );
        self.with_members(|list| {
            // etcd picks a random id; any id not in use stands for it here.
            let id = list.iter().map(|m| m.id).max().unwrap_or(0) + 1;
            let me = Member {
                id,
                name: String::new(),
                peer_urls: vec![peer_url.to_string()],
                client_urls: Vec::new(),
                is_learner: learner,
            };
            list.push(me.clone());
            (me, list.clone())
        })
    }

    fn wait_caught_up(
        &self,
        id: u64,
        client_url: &str,
        margin: u64,
        within: Duration,
    ) -> Result<MemberStatus, EtcdError> {
        println!(
            "[dryrun] Would wait for the etcd member {id:x} to answer at {client_url} with a raft index within {margin} of the leader's (within {within:?})"
        );
        Ok(MemberStatus {
            member_id: id,
            ..Default::default()
        })
    }

    fn wait_healthy_at(&self, client_url: &str, within: Duration) -> Result<(), EtcdError> {
        println!(
            "[dryrun] Would wait for the etcd member at {client_url} to report itself healthy (within {within:?})"
        );
        Ok(())
    }

    fn promote_when_ready(&self, id: u64, within: Duration) -> Result<Vec<Member>, EtcdError> {
        println!(
            "[dryrun] Would promote the learner etcd member {id:x} to a voting member once it has caught up (within {within:?})"
        );
        self.with_members(|list| {
            for m in list.iter_mut().filter(|m| m.id == id) {
                m.is_learner = false;
            }
            list.clone()
        })
    }

    fn remove_when_ready(&self, id: u64, within: Duration) -> Result<Vec<Member>, EtcdError> {
        println!("[dryrun] Would remove the etcd member {id:x} (within {within:?})");
        self.with_members(|list| {
            list.retain(|m| m.id != id);
            list.clone()
        })
    }
}

/// The client identities kubeadm talks to etcd with, in the order they are tried: the node's
/// healthcheck-client pair (upstream's), then the API server's etcd client pair.
pub const CLIENT_PAIRS: [(&str, &str); 2] = [
    ("etcd/healthcheck-client.crt", "etcd/healthcheck-client.key"),
    ("apiserver-etcd-client.crt", "apiserver-etcd-client.key"),
];

/// Reads the CA and the healthcheck-client pair (the identity kubeadm talks to etcd with, as
/// upstream does) from `certs_dir` through the effects layer. A missing file is an error
/// naming it, with `hint`.
pub fn load_tls(fx: &dyn Effects, certs_dir: &Path, hint: &str) -> Result<TlsFiles> {
    load_tls_from(fx, certs_dir, &CLIENT_PAIRS[..1], hint).map(|(_, tls)| tls)
}

/// The one loader of etcd client TLS material: the etcd CA and the first of `pairs` (paths
/// below `certs_dir`) whose certificate and key both exist, read through the effects layer;
/// returns the certificate's path with the files. A missing CA, or no pair, is an error naming
/// what was looked for, with `hint`.
pub fn load_tls_from(
    fx: &dyn Effects,
    certs_dir: &Path,
    pairs: &[(&str, &str)],
    hint: &str,
) -> Result<(PathBuf, TlsFiles)> {
    let ca_path = certs_dir.join("etcd/ca.crt");
    let ca = fx.read(&ca_path)?.ok_or_else(|| {
        Error::with_hint(
            format!("the etcd CA certificate {} is missing", ca_path.display()),
            hint,
        )
    })?;
    for (crt, key) in pairs {
        let (crt, key) = (certs_dir.join(crt), certs_dir.join(key));
        if let (Some(cert), Some(key)) = (fx.read(&crt)?, fx.read(&key)?) {
            return Ok((crt, TlsFiles { ca, cert, key }));
        }
    }
    let wanted: Vec<String> = pairs
        .iter()
        .map(|(crt, key)| {
            format!(
                "{} with {}",
                certs_dir.join(crt).display(),
                certs_dir.join(key).display()
            )
        })
        .collect();
    Err(Error::with_hint(
        format!(
            "no etcd client certificate: {} is missing",
            wanted.join(", nor ")
        ),
        hint,
    ))
}

/// How long one etcd request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A real client for `endpoints` with `tls`.
pub fn client(endpoints: &[String], tls: &TlsFiles) -> Result<EtcdClient, EtcdError> {
    EtcdClient::new(endpoints, Some(tls), REQUEST_TIMEOUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_answers_as_etcd_would_without_a_cluster() {
        let r = Recording::new(None);
        assert!(r.member_list().unwrap().is_empty());
        let (me, list) = r
            .member_add_when_ready("https://10.0.0.2:2380", true, Duration::from_secs(1))
            .unwrap();
        assert!(me.is_learner);
        assert_eq!(list.len(), 1);
        let status = r
            .wait_caught_up(me.id, "https://10.0.0.2:2379", 50, Duration::from_secs(1))
            .unwrap();
        assert_eq!(status.member_id, me.id);
        r.wait_healthy_at("https://10.0.0.2:2379", Duration::from_secs(1))
            .unwrap();
        let list = r.promote_when_ready(me.id, Duration::from_secs(1)).unwrap();
        assert!(!list[0].is_learner);
        assert!(
            r.remove_when_ready(me.id, Duration::from_secs(1))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_loader_takes_the_first_pair_present_and_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let fx = kubeadm_effects::RealEffects::new(dir.path());
        let pki = Path::new("/etc/kubernetes/pki");
        let write = |name: &str, text: &str| {
            let p = dir.path().join("etc/kubernetes/pki").join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        let err = load_tls_from(&fx, pki, &CLIENT_PAIRS, "h")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("etcd CA certificate /etc/kubernetes/pki/etcd/ca.crt"),
            "{err}"
        );
        write("etcd/ca.crt", "ca");
        let err = load_tls(&fx, pki, "h").err().unwrap().to_string();
        assert!(
            err.contains("/etc/kubernetes/pki/etcd/healthcheck-client.crt"),
            "{err}"
        );
        // The API server's pair when the healthcheck-client pair is absent, as `etcd …` does.
        write("apiserver-etcd-client.crt", "api-crt");
        write("apiserver-etcd-client.key", "api-key");
        let (path, tls) = load_tls_from(&fx, pki, &CLIENT_PAIRS, "h").unwrap();
        assert_eq!(path, pki.join("apiserver-etcd-client.crt"));
        assert_eq!((tls.ca, tls.cert), (b"ca".to_vec(), b"api-crt".to_vec()));
        write("etcd/healthcheck-client.crt", "hc-crt");
        write("etcd/healthcheck-client.key", "hc-key");
        let (path, tls) = load_tls_from(&fx, pki, &CLIENT_PAIRS, "h").unwrap();
        assert_eq!(path, pki.join("etcd/healthcheck-client.crt"));
        assert_eq!(tls.key, b"hc-key".to_vec());
        assert_eq!(load_tls(&fx, pki, "h").unwrap().cert, b"hc-crt".to_vec());
    }
}
