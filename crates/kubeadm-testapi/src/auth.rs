//! Authentication (client certificates, bootstrap tokens, anonymous) and authorization by
//! evaluating the stored RBAC objects, plus the bootstrap policy kube-apiserver ships.

use base64::Engine;
use serde_json::{Value, json};

use crate::store::{Store, find};

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// User name.
    pub name: String,
    /// Groups, including `system:authenticated` / `system:unauthenticated`.
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The anonymous user.
    pub fn anonymous() -> Self {
        UserInfo {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        }
    }
}

/// The user a verified client certificate stands for: CN → user, each O → a group.
pub fn user_from_cert(der: &[u8]) -> Option<UserInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let mut groups: Vec<String> = cert
        .subject()
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    groups.push("system:authenticated".into());
    Some(UserInfo { name: cn, groups })
}

fn secret_field(secret: &Value, key: &str) -> Option<String> {
    let b64 = secret["data"][key].as_str()?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    String::from_utf8(raw).ok()
}

/// True when a bootstrap-token Secret's `expiration` is in the past.
pub fn token_expired(secret: &Value) -> bool {
    match secret_field(secret, "expiration") {
        None => false,
        Some(exp) => match exp.parse::<jiff::Timestamp>() {
            Ok(t) => t <= jiff::Timestamp::now(),
            // An unparsable expiration makes the token unusable (as upstream).
            Err(_) => true,
        },
    }
}

/// Checks a bearer token against the stored bootstrap-token Secrets. `None` = not a valid token.
pub fn user_from_bootstrap_token(store: &Store, token: &str) -> Option<UserInfo> {
    let (id, secret) = token.split_once('.')?;
    let valid = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    };
    if !valid(id, 6) || !valid(secret, 16) {
        return None;
    }
    let rt = find("", "v1", "secrets")?;
    let obj = store.get(rt, "kube-system", &format!("bootstrap-token-{id}"))?;
    if obj["type"].as_str() != Some("bootstrap.kubernetes.io/token") {
        return None;
    }
    if secret_field(obj, "token-id").as_deref() != Some(id) {
        return None;
    }
    let stored = secret_field(obj, "token-secret")?;
    if aws_lc_rs::constant_time::verify_slices_are_equal(stored.as_bytes(), secret.as_bytes())
        .is_err()
    {
        return None;
    }
    if token_expired(obj) {
        return None;
    }
    if secret_field(obj, "usage-bootstrap-authentication").as_deref() != Some("true") {
        return None;
    }
    let mut groups = vec!["system:bootstrappers".to_string()];
    if let Some(extra) = secret_field(obj, "auth-extra-groups") {
        for g in extra.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            if !groups.iter().any(|x| x == g) {
                groups.push(g.to_string());
            }
        }
    }
    groups.push("system:authenticated".into());
    Some(UserInfo {
        name: format!("system:bootstrap:{id}"),
        groups,
    })
}

/// What a request wants to do, for authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attributes {
    /// A resource request.
    Resource {
        /// get, list, watch, create, update, patch, delete.
        verb: String,
        /// API group.
        group: String,
        /// Plural resource.
        resource: String,
        /// Subresource ("" for none).
        subresource: String,
        /// Namespace ("" for cluster-scoped or all namespaces).
        namespace: String,
        /// Object name ("" for list/create).
        name: String,
    },
    /// A non-resource URL (`/version`, `/readyz`, …).
    NonResource {
        /// Lower-case HTTP verb (`get`, `post`).
        verb: String,
        /// The path.
        path: String,
    },
}

fn list_has(list: &Value, want: &str) -> bool {
    list.as_array()
        .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(want) || v == "*"))
}

fn rule_allows(rule: &Value, attrs: &Attributes) -> bool {
    match attrs {
        Attributes::Resource {
            verb,
            group,
            resource,
            subresource,
            name,
            ..
        } => {
            if !list_has(&rule["verbs"], verb) || !list_has(&rule["apiGroups"], group) {
                return false;
            }
            let combined = if subresource.is_empty() {
                resource.clone()
            } else {
                format!("{resource}/{subresource}")
            };
            let res_ok = rule["resources"].as_array().is_some_and(|a| {
                a.iter().filter_map(Value::as_str).any(|r| {
                    r == "*"
                        || r == combined
                        || (!subresource.is_empty() && r == format!("*/{subresource}"))
                })
            });
            if !res_ok {
                return false;
            }
            match rule["resourceNames"].as_array() {
                Some(names) if !names.is_empty() => {
                    !name.is_empty() && names.iter().any(|n| n.as_str() == Some(name))
                }
                _ => true,
            }
        }
        Attributes::NonResource { verb, path } => {
            if !list_has(&rule["verbs"], verb) {
                return false;
            }
            rule["nonResourceURLs"].as_array().is_some_and(|a| {
                a.iter().filter_map(Value::as_str).any(|u| {
                    u == "*"
                        || u == path
                        || u.strip_suffix('*').is_some_and(|p| path.starts_with(p))
                })
            })
        }
    }
}

fn subject_matches(subject: &Value, user: &UserInfo) -> bool {
    let name = subject["name"].as_str().unwrap_or_default();
    match subject["kind"].as_str() {
        Some("User") => name == user.name,
        Some("Group") => user.groups.iter().any(|g| g == name),
        Some("ServiceAccount") => {
            let ns = subject["namespace"].as_str().unwrap_or_default();
            user.name == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

fn role_rules(store: &Store, role_ref: &Value, binding_ns: &str) -> Vec<Value> {
    let name = role_ref["name"].as_str().unwrap_or_default();
    let role = match role_ref["kind"].as_str() {
        Some("ClusterRole") => find("rbac.authorization.k8s.io", "v1", "clusterroles")
            .and_then(|rt| store.get(rt, "", name)),
        Some("Role") => find("rbac.authorization.k8s.io", "v1", "roles")
            .and_then(|rt| store.get(rt, binding_ns, name)),
        _ => None,
    };
    role.and_then(|r| r["rules"].as_array().cloned())
        .unwrap_or_default()
}

/// RBAC: is `user` allowed `attrs`? `system:masters` bypasses, as in kube-apiserver.
pub fn authorize(store: &Store, user: &UserInfo, attrs: &Attributes) -> bool {
    if user.groups.iter().any(|g| g == "system:masters") {
        return true;
    }
    // The Node authorizer (kube-apiserver runs `--authorization-mode=Node,RBAC` under kubeadm):
    // a kubelet's identity gets the `system:node` rules without any binding.
    if user.name.starts_with("system:node:")
        && user.groups.iter().any(|g| g == "system:nodes")
        && role_rules(
            store,
            &json!({"kind": "ClusterRole", "name": "system:node"}),
            "",
        )
        .iter()
        .any(|r| rule_allows(r, attrs))
    {
        return true;
    }
    let bound = |binding: &Value| {
        binding["subjects"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| subject_matches(s, user)))
    };
    if let Some(crb) = find("rbac.authorization.k8s.io", "v1", "clusterrolebindings") {
        for b in store.list(crb, None) {
            if bound(&b)
                && role_rules(store, &b["roleRef"], "")
                    .iter()
                    .any(|r| rule_allows(r, attrs))
            {
                return true;
            }
        }
    }
    if let Attributes::Resource { namespace, .. } = attrs
        && !namespace.is_empty()
        && let Some(rb) = find("rbac.authorization.k8s.io", "v1", "rolebindings")
    {
        for b in store.list(rb, Some(namespace)) {
            if bound(&b)
                && role_rules(store, &b["roleRef"], namespace)
                    .iter()
                    .any(|r| rule_allows(r, attrs))
            {
                return true;
            }
        }
    }
    false
}

/// The bootstrap ClusterRoles and ClusterRoleBindings kube-apiserver creates at start that
/// kubeadm relies on (upstream `plugin/pkg/auth/authorizer/rbac/bootstrappolicy`), reduced to the
/// rules that matter here.
pub fn bootstrap_policy() -> Vec<(&'static str, Value)> {
    let cr = |name: &str, rules: Value| {
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                         "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
            "rules": rules,
        })
    };
    let crb = |name: &str, role: &str, subjects: Value| {
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": subjects,
        })
    };
    let group =
        |g: &str| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g});
    vec![
        (
            "clusterroles",
            cr(
                "cluster-admin",
                json!([
                    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                    {"nonResourceURLs": ["*"], "verbs": ["*"]}
                ]),
            ),
        ),
        (
            "clusterroles",
            cr(
                "system:discovery",
                json!([{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                    "/openapi", "/openapi/*", "/readyz", "/version", "/version/"], "verbs": ["get"]}]),
            ),
        ),
        (
            "clusterroles",
            cr(
                "system:public-info-viewer",
                json!([{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                    "verbs": ["get"]}]),
            ),
        ),
        (
            "clusterroles",
            cr(
                "system:basic-user",
                json!([{"apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]}]),
            ),
        ),
        (
            "clusterroles",
            cr(
                "system:node-bootstrapper",
                json!([{"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"],
                    "verbs": ["create", "get", "list", "watch"]}]),
            ),
        ),
        (
            "clusterroles",
            cr(
                "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
                json!([{"apiGroups": ["certificates.k8s.io"],
                    "resources": ["certificatesigningrequests/nodeclient"], "verbs": ["create"]}]),
            ),
        ),
        (
            "clusterroles",
            cr(
                "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
                json!([{"apiGroups": ["certificates.k8s.io"],
                    "resources": ["certificatesigningrequests/selfnodeclient"], "verbs": ["create"]}]),
            ),
        ),
        (
            "clusterroles",
            cr(
                "system:node-proxier",
                json!([
                    {"apiGroups": [""], "resources": ["endpoints", "services"], "verbs": ["list", "watch"]},
                    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
                    {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch", "update"]},
                    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}
                ]),
            ),
        ),
        (
            "clusterroles",
            cr(
                "system:node",
                json!([
                    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["create", "get", "list", "watch", "patch", "update"]},
                    {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch", "update"]},
                    {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete", "get", "list", "watch"]},
                    {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["patch", "update"]},
                    {"apiGroups": [""], "resources": ["configmaps", "secrets", "services"], "verbs": ["get", "list", "watch"]},
                    {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"], "verbs": ["create", "get", "list", "watch"]}
                ]),
            ),
        ),
        (
            "clusterrolebindings",
            crb(
                "cluster-admin",
                "cluster-admin",
                json!([group("system:masters")]),
            ),
        ),
        (
            "clusterrolebindings",
            crb(
                "system:discovery",
                "system:discovery",
                json!([group("system:authenticated")]),
            ),
        ),
        (
            "clusterrolebindings",
            crb(
                "system:basic-user",
                "system:basic-user",
                json!([group("system:authenticated")]),
            ),
        ),
        (
            "clusterrolebindings",
            crb(
                "system:public-info-viewer",
                "system:public-info-viewer",
                json!([
                    group("system:authenticated"),
                    group("system:unauthenticated")
                ]),
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_policy() -> Store {
        let mut s = Store::default();
        for (res, obj) in bootstrap_policy() {
            let rt = find("rbac.authorization.k8s.io", "v1", res).unwrap();
            let name = obj["metadata"]["name"].as_str().unwrap().to_string();
            s.create(rt, "", &name, obj).unwrap();
        }
        s
    }

    fn get(ns: &str, resource: &str, name: &str) -> Attributes {
        Attributes::Resource {
            verb: "get".into(),
            group: String::new(),
            resource: resource.into(),
            subresource: String::new(),
            namespace: ns.into(),
            name: name.into(),
        }
    }

    #[test]
    fn masters_bypass_and_anonymous_is_denied() {
        let s = store_with_policy();
        let admin = UserInfo {
            name: "x".into(),
            groups: vec!["system:masters".into()],
        };
        assert!(authorize(&s, &admin, &get("kube-system", "secrets", "a")));
        assert!(!authorize(
            &s,
            &UserInfo::anonymous(),
            &get("kube-system", "secrets", "a")
        ));
        let version = Attributes::NonResource {
            verb: "get".into(),
            path: "/version".into(),
        };
        assert!(authorize(&s, &UserInfo::anonymous(), &version));
        let api = Attributes::NonResource {
            verb: "get".into(),
            path: "/apis/apps".into(),
        };
        assert!(!authorize(&s, &UserInfo::anonymous(), &api));
    }

    #[test]
    fn role_binding_with_resource_names() {
        let mut s = store_with_policy();
        let role = find("rbac.authorization.k8s.io", "v1", "roles").unwrap();
        let rb = find("rbac.authorization.k8s.io", "v1", "rolebindings").unwrap();
        s.create(role, "kube-public", "r", json!({"metadata":{"name":"r"},
            "rules":[{"apiGroups":[""],"resources":["configmaps"],"resourceNames":["cluster-info"],"verbs":["get"]}]})).unwrap();
        s.create(
            rb,
            "kube-public",
            "r",
            json!({"metadata":{"name":"r"},
            "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"r"},
            "subjects":[{"kind":"User","name":"system:anonymous"}]}),
        )
        .unwrap();
        let anon = UserInfo::anonymous();
        assert!(authorize(
            &s,
            &anon,
            &get("kube-public", "configmaps", "cluster-info")
        ));
        assert!(!authorize(
            &s,
            &anon,
            &get("kube-public", "configmaps", "other")
        ));
        assert!(!authorize(
            &s,
            &anon,
            &get("kube-system", "configmaps", "cluster-info")
        ));
        // list has no name: resourceNames rules do not grant it.
        let list = Attributes::Resource {
            verb: "list".into(),
            group: String::new(),
            resource: "configmaps".into(),
            subresource: String::new(),
            namespace: "kube-public".into(),
            name: String::new(),
        };
        assert!(!authorize(&s, &anon, &list));
    }

    #[test]
    fn group_subjects_and_subresources() {
        let mut s = store_with_policy();
        let crb = find("rbac.authorization.k8s.io", "v1", "clusterrolebindings").unwrap();
        s.create(crb, "", "b", json!({"metadata":{"name":"b"},
            "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole",
                "name":"system:certificates.k8s.io:certificatesigningrequests:nodeclient"},
            "subjects":[{"kind":"Group","name":"system:bootstrappers:kubeadm:default-node-token"}]})).unwrap();
        let boot = UserInfo {
            name: "system:bootstrap:abcdef".into(),
            groups: vec![
                "system:bootstrappers".into(),
                "system:bootstrappers:kubeadm:default-node-token".into(),
                "system:authenticated".into(),
            ],
        };
        let nodeclient = Attributes::Resource {
            verb: "create".into(),
            group: "certificates.k8s.io".into(),
            resource: "certificatesigningrequests".into(),
            subresource: "nodeclient".into(),
            namespace: String::new(),
            name: String::new(),
        };
        assert!(authorize(&s, &boot, &nodeclient));
        let mut other = boot.clone();
        other.groups.retain(|g| !g.contains("default-node-token"));
        assert!(!authorize(&s, &other, &nodeclient));
    }

    #[test]
    fn bootstrap_tokens() {
        let mut s = Store::default();
        let rt = find("", "v1", "secrets").unwrap();
        let b = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
        let mk = |exp: &str, auth: &str| {
            json!({"metadata":{"name":"bootstrap-token-abcdef","namespace":"kube-system"},
                "type":"bootstrap.kubernetes.io/token",
                "data":{"token-id":b("abcdef"),"token-secret":b("0123456789abcdef"),"expiration":b(exp),
                    "usage-bootstrap-authentication":b(auth),"auth-extra-groups":b("system:bootstrappers:kubeadm:default-node-token")}})
        };
        s.create(
            rt,
            "kube-system",
            "bootstrap-token-abcdef",
            mk("2999-01-01T00:00:00Z", "true"),
        )
        .unwrap();
        let u = user_from_bootstrap_token(&s, "abcdef.0123456789abcdef").unwrap();
        assert_eq!(u.name, "system:bootstrap:abcdef");
        assert!(
            u.groups
                .contains(&"system:bootstrappers:kubeadm:default-node-token".to_string())
        );
        assert!(user_from_bootstrap_token(&s, "abcdef.0123456789abcdee").is_none());
        assert!(user_from_bootstrap_token(&s, "abcdeg.0123456789abcdef").is_none());
        s.update(
            rt,
            "kube-system",
            "bootstrap-token-abcdef",
            "",
            mk("2000-01-01T00:00:00Z", "true"),
        )
        .unwrap();
        assert!(user_from_bootstrap_token(&s, "abcdef.0123456789abcdef").is_none());
        s.update(
            rt,
            "kube-system",
            "bootstrap-token-abcdef",
            "",
            mk("2999-01-01T00:00:00Z", "false"),
        )
        .unwrap();
        assert!(user_from_bootstrap_token(&s, "abcdef.0123456789abcdef").is_none());
    }
}
