//! The etcd operations kubeadm needs: list members, add one as a learner, wait until it has
//! caught up (its own status and raft index), promote it, remove one, check health, and stream a
//! snapshot ([`snapshot`]; gRPC, see there why).
//!
//! Hand-written over etcd's HTTPS JSON gateway (`/v3/cluster/member/*`, on by default in etcd
//! 3.4+) instead of the gRPC client crate: the gateway carries the same Cluster API calls, and
//! this keeps `protoc` (needed to build etcd-client) out of the build. Requests use the same client
//! certificate kubeadm uses upstream (`healthcheck-client` or `apiserver-etcd-client`) and verify
//! the server against the etcd CA.

use std::sync::Arc;
use std::time::Duration;

use kubeadm_effects::poll::poll_until;

use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

pub mod backup;
pub mod bolt;
pub mod restore;
pub mod snapshot;

/// What can go wrong talking to etcd.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// The TLS material is unusable.
    #[error("invalid etcd TLS material: {0}")]
    Tls(String),
    /// An endpoint is not a URL we can use.
    #[error("invalid etcd endpoint {0:?}: expected https://host:port or http://host:port")]
    Endpoint(String),
    /// No endpoint answered.
    #[error("no etcd endpoint answered ({endpoints}): {last}")]
    Unreachable {
        /// The endpoints tried.
        endpoints: String,
        /// The last failure.
        last: String,
    },
    /// etcd answered with an error.
    #[error("etcd refused {call}: {message}")]
    Server {
        /// The call (`member/add`, …).
        call: &'static str,
        /// etcd's message.
        message: String,
    },
    /// An answer could not be understood.
    #[error("unexpected answer from etcd to {call}: {message}")]
    Decode {
        /// The call.
        call: &'static str,
        /// What was wrong.
        message: String,
    },
    /// A snapshot stream failed after it started (the partial output must be discarded).
    #[error("snapshot from {endpoint} failed: {message}")]
    Snapshot {
        /// The endpoint streaming it.
        endpoint: String,
        /// What went wrong.
        message: String,
    },
    /// A wait ran out.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
}

impl kubeadm_errors::Hint for EtcdError {
    fn hint(&self) -> Option<String> {
        Some("check the etcd members' health with etcdctl (`endpoint health`, `member list`) using the healthcheck-client certificate".into())
    }
}

/// PEM-encoded TLS material for talking to etcd.
#[derive(Clone)]
pub struct TlsFiles {
    /// CA bundle that signed the servers' certificates.
    pub ca: Vec<u8>,
    /// Client certificate.
    pub cert: Vec<u8>,
    /// Client private key.
    pub key: Vec<u8>,
}

/// One etcd member.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Member {
    /// Member id.
    #[serde(rename = "ID", deserialize_with = "u64_string")]
    pub id: u64,
    /// Member name (empty until it has started).
    #[serde(default)]
    pub name: String,
    /// Peer URLs.
    #[serde(rename = "peerURLs", default)]
    pub peer_urls: Vec<String>,
    /// Client URLs (empty until it has started).
    #[serde(rename = "clientURLs", default)]
    pub client_urls: Vec<String>,
    /// True for a learner (non-voting) member.
    #[serde(rename = "isLearner", default)]
    pub is_learner: bool,
}

/// What one member says about itself (`Maintenance/Status`): enough to tell whether a new
/// member runs, is the member it should be, and has caught up with the leader.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberStatus {
    /// The answering member's id.
    pub member_id: u64,
    /// The leader's id as the answering member knows it (0: it knows no leader).
    pub leader: u64,
    /// The answering member's raft index.
    pub raft_index: u64,
    /// True when the answering member is a learner.
    pub is_learner: bool,
    /// The errors etcd reports (alarms, …).
    pub errors: Vec<String>,
}

impl MemberStatus {
    /// From the gateway's answer: uint64 fields come as strings, zero and false ones are left
    /// out, and the header's names are the proto's own (`member_id`) or camel-cased.
    fn from_json(v: &Value) -> Self {
        let num = |v: &Value| match v {
            Value::String(s) => s.parse().unwrap_or(0),
            Value::Number(n) => n.as_u64().unwrap_or(0),
            _ => 0,
        };
        let header = &v["header"];
        let member_id = match &header["member_id"] {
            Value::Null => num(&header["memberId"]),
            id => num(id),
        };
        MemberStatus {
            member_id,
            leader: num(&v["leader"]),
            raft_index: num(&v["raftIndex"]),
            is_learner: v["isLearner"].as_bool().unwrap_or(false),
            errors: v["errors"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|e| e.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// The gateway encodes uint64 as a JSON string (proto3 JSON mapping).
fn u64_string<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = Value::deserialize(d)?;
    match &v {
        Value::String(s) => s.parse().map_err(serde::de::Error::custom),
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| serde::de::Error::custom("negative member id")),
        _ => Err(serde::de::Error::custom("member id must be a number")),
    }
}

/// A client for a set of etcd endpoints.
pub struct EtcdClient {
    endpoints: Vec<String>,
    /// The JSON gateway's client (the TLS material, the timeout of one call).
    http: kubeadm_http::Client,
    /// The same TLS material offering HTTP/2 (ALPN `h2`), for gRPC.
    tls_h2: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
    runtime: tokio::runtime::Runtime,
}

/// An etcd endpoint: `http(s)://host:port` with the port spelled out (etcd has no default).
fn parse_endpoint(e: &str) -> Result<kubeadm_http::Url, EtcdError> {
    let bad = || EtcdError::Endpoint(e.to_string());
    let url = kubeadm_http::Url::parse(e.trim_end_matches('/')).map_err(|_| bad())?;
    if !url.explicit_port || url.path != "/" {
        return Err(bad());
    }
    Ok(url)
}

fn tls_config(files: &TlsFiles) -> Result<rustls::ClientConfig, EtcdError> {
    kubeadm_http::client_config(&files.ca, Some((&files.cert, &files.key)))
        .map_err(|e| EtcdError::Tls(e.to_string()))
}

impl EtcdClient {
    /// A client for `endpoints` (`https://10.0.0.1:2379`, …); `tls` is required for https.
    pub fn new(
        endpoints: &[String],
        tls: Option<&TlsFiles>,
        timeout: Duration,
    ) -> Result<Self, EtcdError> {
        for e in endpoints {
            parse_endpoint(e)?;
        }
        if endpoints.is_empty() {
            return Err(EtcdError::Endpoint(String::new()));
        }
        let tls = tls.map(tls_config).transpose()?;
        let tls_h2 = tls.as_ref().map(snapshot::h2_config);
        let mut http = kubeadm_http::Client::new(timeout);
        if let Some(tls) = tls {
            http = http.with_tls(Arc::new(tls));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| EtcdError::Tls(format!("cannot start the I/O runtime: {e}")))?;
        Ok(EtcdClient {
            endpoints: endpoints.to_vec(),
            http,
            tls_h2,
            timeout,
            runtime,
        })
    }

    async fn request_one(
        &self,
        endpoint: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<kubeadm_http::Response, String> {
        let url = format!("{}{path}", endpoint.trim_end_matches('/'));
        let data = body.map(|b| b.to_string()).unwrap_or_default();
        let mut req = kubeadm_http::Request::post_json(url, data);
        req.method =
            hyper::Method::from_bytes(method.as_bytes()).map_err(|e| format!("{endpoint}: {e}"))?;
        self.http
            .send(&req)
            .await
            .map_err(|e| format!("{endpoint}: {e}"))
    }

    /// Sends to each of this client's endpoints in turn until one answers.
    fn call(
        &self,
        call: &'static str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, EtcdError> {
        self.call_on(&self.endpoints, call, method, path, body)
    }

    /// Sends to each of `endpoints` in turn until one answers; etcd errors are returned at once.
    fn call_on(
        &self,
        endpoints: &[String],
        call: &'static str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, EtcdError> {
        let mut last = String::new();
        for endpoint in endpoints {
            let answer =
                self.runtime
                    .block_on(self.request_one(endpoint, method, path, body.as_ref()));
            match answer {
                Err(e) => last = e,
                Ok(kubeadm_http::Response {
                    status,
                    body: bytes,
                }) => {
                    let value: Value =
                        serde_json::from_slice(&bytes).map_err(|e| EtcdError::Decode {
                            call,
                            message: format!("{e} in {:?}", String::from_utf8_lossy(&bytes)),
                        })?;
                    if !status.is_success() {
                        let message = value["message"]
                            .as_str()
                            .or(value["error"].as_str())
                            // `/health` says why it is not healthy here.
                            .or(value["reason"].as_str())
                            .unwrap_or("unknown error")
                            .to_string();
                        return Err(EtcdError::Server { call, message });
                    }
                    return Ok(value);
                }
            }
        }
        Err(EtcdError::Unreachable {
            endpoints: endpoints.join(", "),
            last,
        })
    }

    fn members_of(call: &'static str, v: &Value) -> Result<Vec<Member>, EtcdError> {
        let list = v
            .get("members")
            .cloned()
            .unwrap_or(Value::Array(Vec::new()));
        serde_json::from_value(list).map_err(|e| EtcdError::Decode {
            call,
            message: e.to_string(),
        })
    }

    /// Every member of the cluster.
    pub fn member_list(&self) -> Result<Vec<Member>, EtcdError> {
        let v = self.call(
            "member/list",
            "POST",
            "/v3/cluster/member/list",
            Some(json!({"linearizable": true})),
        )?;
        Self::members_of("member/list", &v)
    }

    /// Adds a member with `peer_url`, as a non-voting learner when `learner`; returns it and the
    /// new member list.
    pub fn member_add(
        &self,
        peer_url: &str,
        learner: bool,
    ) -> Result<(Member, Vec<Member>), EtcdError> {
        let v = self.call(
            "member/add",
            "POST",
            "/v3/cluster/member/add",
            Some(json!({"peerURLs": [peer_url], "isLearner": learner})),
        )?;
        let member: Member =
            serde_json::from_value(v["member"].clone()).map_err(|e| EtcdError::Decode {
                call: "member/add",
                message: e.to_string(),
            })?;
        Ok((member, Self::members_of("member/add", &v)?))
    }

    /// [`member_add`](Self::member_add), retried for `within` while etcd cannot take the change
    /// yet: "etcdserver: unhealthy cluster" (its answer right after a start or a restore, until
    /// every voting member has been connected for a few seconds), "too many learner members in
    /// cluster" (etcd 3.5 takes one learner at a time: another node's join is still catching
    /// up), a request that timed out, or no endpoint answering. A refused or lost request may
    /// still have been applied, so before each retry a member with `peer_url` already in the
    /// list is taken as the one added (as is one etcd says already exists).
    pub fn member_add_when_ready(
        &self,
        peer_url: &str,
        learner: bool,
        within: Duration,
    ) -> Result<(Member, Vec<Member>), EtcdError> {
        let mut first = true;
        retry_if(
            within,
            &format!("etcd to accept the member {peer_url}"),
            |e| match e {
                EtcdError::Server { message, .. } => {
                    message.contains("unhealthy cluster")
                        || message.contains("timed out")
                        || message.contains("too many learner members")
                }
                EtcdError::Unreachable { .. } => true,
                _ => false,
            },
            || {
                if !std::mem::take(&mut first)
                    && let Some(found) = self.member_with_peer_url(peer_url)
                {
                    return Ok(found);
                }
                match self.member_add(peer_url, learner) {
                    // Added before (a join run again): that member is the one.
                    Err(e @ EtcdError::Server { .. })
                        if e.to_string().contains("already exist") =>
                    {
                        self.member_with_peer_url(peer_url).ok_or(e)
                    }
                    other => other,
                }
            },
        )
    }

    /// The member with `peer_url` and the member list, when the list can be read and holds it.
    fn member_with_peer_url(&self, peer_url: &str) -> Option<(Member, Vec<Member>)> {
        let list = self.member_list().ok()?;
        let m = list
            .iter()
            .find(|m| m.peer_urls.iter().any(|u| u == peer_url))?
            .clone();
        Some((m, list))
    }

    /// The status of the one member at `endpoint` (a learner answers it too).
    pub fn status_at(&self, endpoint: &str) -> Result<MemberStatus, EtcdError> {
        let v = self.call_on(
            &[endpoint.to_string()],
            "maintenance/status",
            "POST",
            "/v3/maintenance/status",
            Some(json!({})),
        )?;
        Ok(MemberStatus::from_json(&v))
    }

    /// The leader's status: that of the endpoint that says it is the leader, else the highest
    /// raft index any endpoint reports (a follower's lags the leader's only slightly).
    pub fn leader_status(&self) -> Result<MemberStatus, EtcdError> {
        let mut best: Option<MemberStatus> = None;
        let mut last = String::new();
        for endpoint in &self.endpoints {
            match self.status_at(endpoint) {
                Ok(s) if s.leader != 0 && s.member_id == s.leader => return Ok(s),
                Ok(s) => {
                    if best.as_ref().is_none_or(|b| s.raft_index > b.raft_index) {
                        best = Some(s);
                    }
                }
                Err(e) => last = e.to_string(),
            }
        }
        best.ok_or_else(|| EtcdError::Unreachable {
            endpoints: self.endpoints.join(", "),
            last,
        })
    }

    /// Waits for `within` until member `id` answers at `client_url` as itself and its raft index
    /// is within `margin` of the leader's: it runs and has caught up. The timeout names what it
    /// answered last.
    pub fn wait_caught_up(
        &self,
        id: u64,
        client_url: &str,
        margin: u64,
        within: Duration,
    ) -> Result<MemberStatus, EtcdError> {
        let mut last = String::new();
        let mut caught_up = None;
        // The one backoff loop (kubeadm-effects' poll_until), as every wait of kubeadm.
        poll_until(within, &mut || {
            match self.status_at(client_url) {
                Ok(s) if s.member_id != id => {
                    last = format!("it answered as member {:x}", s.member_id);
                }
                Ok(s) => match self.leader_status() {
                    Ok(l) if s.raft_index.saturating_add(margin) >= l.raft_index => {
                        caught_up = Some(s);
                        return true;
                    }
                    Ok(l) => {
                        last = format!(
                            "raft index {}, the leader ({:x}) is at {}",
                            s.raft_index, l.member_id, l.raft_index
                        );
                    }
                    Err(e) => {
                        last = format!(
                            "raft index {}, but the leader's is unknown: {e}",
                            s.raft_index
                        );
                    }
                },
                Err(e) => last = e.to_string(),
            }
            false
        });
        caught_up.ok_or_else(|| {
            EtcdError::Timeout(
                within,
                format!(
                    "member {id:x} at {client_url} to catch up with the leader (last answer: {last})"
                ),
            )
        })
    }

    /// Waits for `within` until the member at `client_url` reports itself healthy: it has a
    /// leader and serves a linearizable read, so the cluster has quorum.
    pub fn wait_healthy_at(&self, client_url: &str, within: Duration) -> Result<(), EtcdError> {
        retry(
            within,
            &format!("the member at {client_url} to be healthy"),
            || self.health_on(&[client_url.to_string()]),
        )
    }

    /// Promotes a learner to a voting member (fails while it has not caught up).
    pub fn member_promote(&self, id: u64) -> Result<Vec<Member>, EtcdError> {
        let v = self.call(
            "member/promote",
            "POST",
            "/v3/cluster/member/promote",
            Some(json!({"ID": id.to_string()})),
        )?;
        Self::members_of("member/promote", &v)
    }

    /// Removes a member.
    pub fn member_remove(&self, id: u64) -> Result<Vec<Member>, EtcdError> {
        let v = self.call(
            "member/remove",
            "POST",
            "/v3/cluster/member/remove",
            Some(json!({"ID": id.to_string()})),
        )?;
        Self::members_of("member/remove", &v)
    }

    /// etcd's own health endpoint (`GET /health` → `{"health":"true"}`).
    pub fn health(&self) -> Result<(), EtcdError> {
        self.health_on(&self.endpoints)
    }

    /// `/health` of the first of `endpoints` that answers.
    fn health_on(&self, endpoints: &[String]) -> Result<(), EtcdError> {
        let v = self.call_on(endpoints, "health", "GET", "/health", None)?;
        match v["health"].as_str() {
            Some("true") => Ok(()),
            _ => Err(EtcdError::Server {
                call: "health",
                message: v.to_string(),
            }),
        }
    }

    /// Promotes a learner once it has caught up with the leader ("can only promote a learner
    /// member which is in sync with leader" until then), retrying with backoff for `within`.
    pub fn promote_when_ready(&self, id: u64, within: Duration) -> Result<Vec<Member>, EtcdError> {
        retry(
            within,
            &format!("learner {id:x} to catch up and be promoted"),
            || self.member_promote(id),
        )
    }

    /// Removes a member, retrying with backoff for `within` while etcd refuses because the
    /// cluster would be unhealthy right after a membership change.
    pub fn remove_when_ready(&self, id: u64, within: Duration) -> Result<Vec<Member>, EtcdError> {
        retry(within, &format!("member {id:x} to be removed"), || {
            self.member_remove(id)
        })
    }
}

/// Calls `op` until it succeeds or `within` runs out (through [`poll_until`]); only etcd's
/// refusals and unreachable endpoints are retried.
fn retry<T>(
    within: Duration,
    what: &str,
    op: impl FnMut() -> Result<T, EtcdError>,
) -> Result<T, EtcdError> {
    retry_if(
        within,
        what,
        |e| matches!(e, EtcdError::Server { .. } | EtcdError::Unreachable { .. }),
        op,
    )
}

/// Calls `op` until it succeeds or `within` runs out (through [`poll_until`]); the errors
/// `retryable` accepts are retried, any other is returned at once.
fn retry_if<T>(
    within: Duration,
    what: &str,
    retryable: impl Fn(&EtcdError) -> bool,
    mut op: impl FnMut() -> Result<T, EtcdError>,
) -> Result<T, EtcdError> {
    let mut outcome = None;
    let mut last = None;
    poll_until(within, &mut || match op() {
        Ok(v) => {
            outcome = Some(Ok(v));
            true
        }
        Err(e) if retryable(&e) => {
            last = Some(e);
            false
        }
        Err(e) => {
            outcome = Some(Err(e));
            true
        }
    });
    outcome.unwrap_or_else(|| {
        let last = last.map(|e| e.to_string()).unwrap_or_default();
        Err(EtcdError::Timeout(
            within,
            format!("{what} (last error: {last})"),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        assert!(parse_endpoint("https://127.0.0.1:2379").unwrap().https);
        assert_eq!(parse_endpoint("http://[::1]:2379/").unwrap().host, "::1");
        assert!(parse_endpoint("127.0.0.1:2379").is_err());
        assert!(parse_endpoint("https://host").is_err());
    }

    #[test]
    fn status_decodes_the_gateway_answer() {
        let v = json!({"header": {"cluster_id": "1", "member_id": "12345678901234567890", "revision": "7"}, "version": "3.5.17", "leader": "12345678901234567890", "raftIndex": "42", "isLearner": true});
        let s = MemberStatus::from_json(&v);
        assert_eq!(s.member_id, 12345678901234567890);
        assert_eq!(s.leader, s.member_id);
        assert_eq!(s.raft_index, 42);
        assert!(s.is_learner);
        // Zero values are left out by the gateway.
        let s = MemberStatus::from_json(&json!({"header": {"memberId": "5"}}));
        assert_eq!(
            (s.member_id, s.leader, s.raft_index, s.is_learner),
            (5, 0, 0, false)
        );
    }

    #[test]
    fn members_decode_string_ids() {
        let v = json!({"members": [{"ID": "12345678901234567890", "name": "a", "peerURLs": ["https://1:2380"], "isLearner": true}, {"ID": "5", "peerURLs": []}]});
        let m = EtcdClient::members_of("t", &v).unwrap();
        assert_eq!(m[0].id, 12345678901234567890);
        assert!(m[0].is_learner && !m[1].is_learner);
    }
}
