//! Bootstrap-token Secrets (`kube-system/bootstrap-token-<id>`, type
//! `bootstrap.kubernetes.io/token`) and reading them back for `token list`.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kubeadm_api::v1beta4::BootstrapToken;

use crate::{ClusterError, meta};

/// The Secret type of bootstrap tokens.
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
/// The group kubeadm's default tokens authenticate as.
pub const DEFAULT_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";
/// The usages a token may have.
pub const USAGES: &[&str] = &["signing", "authentication"];

/// The Secret name of a token id.
pub fn secret_name(id: &str) -> String {
    format!("bootstrap-token-{id}")
}

/// The RFC 3339 expiry of a token created at `now`: `expires` if set, else `now + ttl`
/// (`None` = never, for a zero TTL).
pub fn expiration(
    t: &BootstrapToken,
    now: jiff::Timestamp,
) -> Result<Option<String>, ClusterError> {
    let err = |detail: String| ClusterError::Token {
        id: t.token.id().to_string(),
        detail,
    };
    if let Some(e) = &t.expires {
        let ts: jiff::Timestamp = e
            .parse()
            .map_err(|x| err(format!("expires {e:?} is not an RFC 3339 time: {x}")))?;
        return Ok(Some(ts.to_string()));
    }
    let ttl = t
        .ttl
        .map(|d| d.as_nanos())
        .unwrap_or(24 * 3600 * 1_000_000_000);
    if ttl <= 0 {
        return Ok(None);
    }
    let exp = now
        .checked_add(jiff::SignedDuration::from_nanos(ttl))
        .map_err(|x| err(format!("ttl too large: {x}")))?;
    let exp = exp
        .round(jiff::Unit::Second)
        .map_err(|x| err(x.to_string()))?;
    Ok(Some(exp.to_string()))
}

/// The Secret for a token.
pub fn secret(t: &BootstrapToken, now: jiff::Timestamp) -> Result<Secret, ClusterError> {
    let mut data: BTreeMap<String, ByteString> = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        data.insert(k.to_string(), ByteString(v.as_bytes().to_vec()));
    };
    put("token-id", t.token.id());
    put("token-secret", t.token.secret());
    if !t.description.is_empty() {
        put("description", &t.description);
    }
    if let Some(exp) = expiration(t, now)? {
        put("expiration", &exp);
    }
    for u in &t.usages {
        if !USAGES.contains(&u.as_str()) {
            return Err(ClusterError::Token {
                id: t.token.id().to_string(),
                detail: format!("unknown usage {u:?}; valid usages are {USAGES:?}"),
            });
        }
        put(&format!("usage-bootstrap-{u}"), "true");
    }
    if !t.groups.is_empty() {
        put("auth-extra-groups", &t.groups.join(","));
    }
    Ok(Secret {
        metadata: meta(&secret_name(t.token.id()), Some("kube-system")),
        type_: Some(SECRET_TYPE.into()),
        data: Some(data),
        ..Default::default()
    })
}

/// A token as read back from its Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// `id.secret`.
    pub token: String,
    /// Description.
    pub description: String,
    /// RFC 3339 expiry, if any.
    pub expires: Option<String>,
    /// Usages (`authentication`, `signing`), sorted.
    pub usages: Vec<String>,
    /// Extra groups.
    pub groups: Vec<String>,
}

/// Reads a bootstrap-token Secret; `None` when it is not a well-formed one.
pub fn from_secret(s: &Secret) -> Option<TokenInfo> {
    if s.type_.as_deref() != Some(SECRET_TYPE) {
        return None;
    }
    let data = s.data.as_ref()?;
    let get = |k: &str| {
        data.get(k)
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
    };
    let id = get("token-id")?;
    let secret = get("token-secret")?;
    let tok = kubeadm_api::BootstrapTokenString::parse(&format!("{id}.{secret}")).ok()?;
    if s.metadata.name.as_deref() != Some(secret_name(tok.id()).as_str()) {
        return None;
    }
    let mut usages: Vec<String> = data
        .iter()
        .filter_map(|(k, v)| {
            let u = k.strip_prefix("usage-bootstrap-")?;
            (v.0 == b"true").then(|| u.to_string())
        })
        .collect();
    usages.sort();
    Some(TokenInfo {
        token: tok.to_string(),
        description: get("description").unwrap_or_default(),
        expires: get("expiration"),
        usages,
        groups: get("auth-extra-groups")
            .map(|g| {
                g.split(',')
                    .map(str::to_string)
                    .filter(|g| !g.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// True when the token expired before `now`.
pub fn is_expired(info: &TokenInfo, now: jiff::Timestamp) -> bool {
    info.expires
        .as_deref()
        .is_some_and(|e| e.parse::<jiff::Timestamp>().map_or(true, |t| t <= now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok() -> BootstrapToken {
        BootstrapToken {
            token: kubeadm_api::BootstrapTokenString::parse("abcdef.0123456789abcdef").unwrap(),
            description: "d".into(),
            ttl: Some(kubeadm_api::Duration::parse("1h").unwrap()),
            expires: None,
            usages: vec!["signing".into(), "authentication".into()],
            groups: vec![DEFAULT_GROUP.into()],
        }
    }

    #[test]
    fn secret_layout_and_round_trip() {
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let s = secret(&tok(), now).unwrap();
        assert_eq!(s.metadata.name.as_deref(), Some("bootstrap-token-abcdef"));
        assert_eq!(s.metadata.namespace.as_deref(), Some("kube-system"));
        let d = s.data.as_ref().unwrap();
        assert_eq!(d["expiration"].0, b"2026-01-01T01:00:00Z");
        assert_eq!(d["usage-bootstrap-signing"].0, b"true");
        assert_eq!(d["auth-extra-groups"].0, DEFAULT_GROUP.as_bytes());
        let back = from_secret(&s).unwrap();
        assert_eq!(back.token, "abcdef.0123456789abcdef");
        assert_eq!(back.usages, ["authentication", "signing"]);
        assert!(!is_expired(&back, now));
        assert!(is_expired(&back, "2026-01-01T02:00:00Z".parse().unwrap()));
    }

    #[test]
    fn zero_ttl_never_expires_and_bad_usage_fails() {
        let now = jiff::Timestamp::UNIX_EPOCH;
        let mut t = tok();
        t.ttl = Some(kubeadm_api::Duration(0));
        assert!(
            secret(&t, now)
                .unwrap()
                .data
                .unwrap()
                .contains_key("expiration")
                .eq(&false)
        );
        t.usages = vec!["bogus".into()];
        assert!(secret(&t, now).is_err());
    }
}
