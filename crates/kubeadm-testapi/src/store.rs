//! The object store: JSON objects keyed by group/resource/namespace/name, with resourceVersion.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// A kind the server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType {
    /// API group ("" for core).
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Plural resource name in URLs.
    pub resource: &'static str,
    /// Kind in bodies.
    pub kind: &'static str,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Whether the object has a `status` that only the status subresource may change.
    pub has_status: bool,
}

impl ResourceType {
    /// `apiVersion` as written in bodies (`v1`, `apps/v1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

const fn rt(
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
    has_status: bool,
) -> ResourceType {
    ResourceType {
        group,
        version,
        resource,
        kind,
        namespaced,
        has_status,
    }
}

/// Every kind the test server serves.
pub const RESOURCES: &[ResourceType] = &[
    rt("", "v1", "namespaces", "Namespace", false, true),
    rt("", "v1", "configmaps", "ConfigMap", true, false),
    rt("", "v1", "secrets", "Secret", true, false),
    rt("", "v1", "nodes", "Node", false, true),
    rt("", "v1", "pods", "Pod", true, true),
    rt("", "v1", "serviceaccounts", "ServiceAccount", true, false),
    rt("", "v1", "services", "Service", true, true),
    rt("apps", "v1", "deployments", "Deployment", true, true),
    rt("apps", "v1", "daemonsets", "DaemonSet", true, true),
    rt("batch", "v1", "jobs", "Job", true, true),
    rt(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        true,
        false,
    ),
    rt(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
        false,
    ),
    rt(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
        false,
    ),
    rt(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        false,
    ),
    rt(
        "certificates.k8s.io",
        "v1",
        "certificatesigningrequests",
        "CertificateSigningRequest",
        false,
        true,
    ),
];

/// Finds a served kind by group, version and plural resource name.
pub fn find(group: &str, version: &str, resource: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.resource == resource)
}

/// Finds a served kind by group and plural resource name (any version).
pub fn find_resource(group: &str, resource: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.resource == resource)
}

/// The objects, plus the global resourceVersion counter.
#[derive(Debug, Default)]
pub struct Store {
    objects: BTreeMap<(String, String, String, String), Value>,
    rv: u64,
    uid: u64,
}

/// Why a store operation failed (mapped to a Kubernetes `Status` by the HTTP layer).
#[derive(Debug, Clone, PartialEq)]
pub enum StoreError {
    /// No such object.
    NotFound,
    /// The object exists already.
    AlreadyExists,
    /// The given resourceVersion is not the stored one.
    Conflict,
}

fn key(rt: &ResourceType, ns: &str, name: &str) -> (String, String, String, String) {
    (
        rt.group.to_string(),
        rt.resource.to_string(),
        ns.to_string(),
        name.to_string(),
    )
}

/// The current time, whole seconds, RFC 3339 (as the apiserver writes `creationTimestamp`).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| jiff::Timestamp::now().to_string())
}

impl Store {
    /// The newest resourceVersion handed out.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// One object.
    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(&key(rt, ns, name))
    }

    /// Objects of a kind, in one namespace or all (`ns == None`), sorted by namespace and name.
    pub fn list(&self, rt: &ResourceType, ns: Option<&str>) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((g, r, n, _), _)| {
                g == rt.group && r == rt.resource && ns.is_none_or(|want| n == want)
            })
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    /// Stores a new object, filling uid, resourceVersion, creationTimestamp and generation.
    pub fn create(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        mut obj: Value,
    ) -> Result<Value, StoreError> {
        let k = key(rt, ns, name);
        if self.objects.contains_key(&k) {
            return Err(StoreError::AlreadyExists);
        }
        self.uid += 1;
        let uid = format!("00000000-0000-4000-8000-{:012x}", self.uid);
        let rv = self.next_rv();
        let meta = meta_mut(&mut obj);
        meta.insert("uid".into(), json!(uid));
        meta.insert("resourceVersion".into(), json!(rv));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        meta.insert("generation".into(), json!(1));
        self.objects.insert(k, obj.clone());
        Ok(obj)
    }

    /// Replaces an object. `expected_rv` (when non-empty) must equal the stored resourceVersion.
    /// Server-owned metadata (uid, creationTimestamp) is kept; generation grows when spec changes.
    pub fn update(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        expected_rv: &str,
        mut obj: Value,
    ) -> Result<Value, StoreError> {
        let k = key(rt, ns, name);
        let old = self.objects.get(&k).ok_or(StoreError::NotFound)?.clone();
        let old_rv = old["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default();
        if !expected_rv.is_empty() && expected_rv != old_rv {
            return Err(StoreError::Conflict);
        }
        if strip_volatile(&old) == strip_volatile(&obj) {
            // A no-op update does not bump resourceVersion (as etcd3 storage).
            return Ok(old);
        }
        let rv = self.next_rv();
        let mut generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
        if old.get("spec") != obj.get("spec") {
            generation += 1;
        }
        let meta = meta_mut(&mut obj);
        for f in ["uid", "creationTimestamp"] {
            if let Some(v) = old["metadata"].get(f) {
                meta.insert(f.into(), v.clone());
            }
        }
        meta.insert("resourceVersion".into(), json!(rv));
        meta.insert("generation".into(), json!(generation));
        self.objects.insert(k, obj.clone());
        Ok(obj)
    }

    /// Removes an object, returning it.
    pub fn delete(&mut self, rt: &ResourceType, ns: &str, name: &str) -> Result<Value, StoreError> {
        let removed = self
            .objects
            .remove(&key(rt, ns, name))
            .ok_or(StoreError::NotFound)?;
        self.next_rv();
        Ok(removed)
    }

    /// Removes every namespaced object in `ns`.
    pub fn delete_namespace_contents(&mut self, ns: &str) {
        self.objects.retain(|(g, r, n, _), _| {
            let namespaced = find_resource(g, r).is_some_and(|t| t.namespaced);
            !(namespaced && n == ns)
        });
    }
}

/// The object without the fields the server owns, to detect no-op updates.
fn strip_volatile(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in ["uid", "resourceVersion", "creationTimestamp", "generation"] {
            m.remove(f);
        }
    }
    v
}

/// `metadata` as a mutable map, created when missing.
pub fn meta_mut(obj: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let Some(map) = obj.as_object_mut() else {
        unreachable!("made an object above")
    };
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Default::default()));
    if !meta.is_object() {
        *meta = Value::Object(Default::default());
    }
    match meta.as_object_mut() {
        Some(m) => m,
        None => unreachable!("made an object above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm() -> &'static ResourceType {
        find("", "v1", "configmaps").unwrap()
    }

    #[test]
    fn create_get_update_conflict_delete() {
        let mut s = Store::default();
        let obj = json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"x"},"data":{"k":"v"}});
        let created = s.create(cm(), "x", "a", obj.clone()).unwrap();
        let rv1 = created["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(created["metadata"]["uid"].is_string());
        assert_eq!(
            s.create(cm(), "x", "a", obj.clone()),
            Err(StoreError::AlreadyExists)
        );
        let mut changed = created.clone();
        changed["data"]["k"] = json!("w");
        let updated = s.update(cm(), "x", "a", &rv1, changed.clone()).unwrap();
        let rv2 = updated["metadata"]["resourceVersion"].as_str().unwrap();
        assert_ne!(rv1, rv2);
        assert_eq!(updated["metadata"]["uid"], created["metadata"]["uid"]);
        // Stale resourceVersion → conflict.
        assert_eq!(
            s.update(cm(), "x", "a", &rv1, changed.clone()),
            Err(StoreError::Conflict)
        );
        // Unconditional update works.
        assert!(s.update(cm(), "x", "a", "", changed).is_ok());
        assert_eq!(s.list(cm(), Some("x")).len(), 1);
        assert_eq!(s.list(cm(), Some("y")).len(), 0);
        assert!(s.delete(cm(), "x", "a").is_ok());
        assert_eq!(s.delete(cm(), "x", "a"), Err(StoreError::NotFound));
        assert!(s.get(cm(), "x", "a").is_none());
    }

    #[test]
    fn noop_update_keeps_resource_version() {
        let mut s = Store::default();
        let obj =
            json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"x"}});
        let created = s.create(cm(), "x", "a", obj).unwrap();
        let again = s.update(cm(), "x", "a", "", created.clone()).unwrap();
        assert_eq!(again, created);
    }
}
