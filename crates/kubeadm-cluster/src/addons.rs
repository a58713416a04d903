//! The CoreDNS and kube-proxy addon objects (images from the version table; disabled addons
//! yield nothing). The objects users customise (CoreDNS's Deployment and Corefile, kube-proxy's
//! DaemonSet) carry what kubeadm applied in [`crate::merge::LAST_APPLIED`], the base of the
//! upgrade's three-way merge.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kubeadm_api::config::InitConfig;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::ClusterError;
use crate::merge::recorded;

fn obj<T: DeserializeOwned>(what: &'static str, v: Value) -> Result<T, ClusterError> {
    serde_json::from_value(v).map_err(|e| ClusterError::Encode {
        what,
        detail: e.to_string(),
    })
}

/// Every CoreDNS object.
#[derive(Debug, Clone)]
pub struct CoreDns {
    /// kube-system/coredns.
    pub service_account: ServiceAccount,
    /// system:coredns.
    pub cluster_role: ClusterRole,
    /// system:coredns.
    pub cluster_role_binding: ClusterRoleBinding,
    /// kube-system/coredns with the Corefile.
    pub config_map: ConfigMap,
    /// kube-system/coredns.
    pub deployment: Deployment,
    /// kube-system/kube-dns.
    pub service: Service,
}

/// The Corefile for a cluster domain.
pub fn corefile(dns_domain: &str) -> String {
    format!(
        ".:53 {{\n    errors\n    health {{\n       lameduck 5s\n    }}\n    ready\n    kubernetes {dns_domain} in-addr.arpa ip6.arpa {{\n       pods insecure\n       fallthrough in-addr.arpa ip6.arpa\n       ttl 30\n    }}\n    prometheus :9153\n    forward . /etc/resolv.conf {{\n       max_concurrent 1000\n    }}\n    cache 30\n    loop\n    reload\n    loadbalance\n}}\n"
    )
}

/// CoreDNS, or `None` when `dns.disabled`.
pub fn coredns(cfg: &InitConfig) -> Result<Option<CoreDns>, ClusterError> {
    if cfg.cluster.dns.disabled {
        return Ok(None);
    }
    let image = kubeadm_api::images::coredns_image(&cfg.cluster, cfg.info());
    // CoreDNS runs on control-plane nodes before any worker exists: it tolerates every
    // NoSchedule taint kubeadm of this minor puts there (the `master` one up to 1.24).
    let mut tolerations = vec![json!({"key": "CriticalAddonsOnly", "operator": "Exists"})];
    if cfg.info().has_master_taint() {
        tolerations.push(json!({"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}));
    }
    tolerations
        .push(json!({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}));
    let dns_ip = kubeadm_api::net::dns_service_ip(&cfg.cluster.networking.service_subnet)
        .ok_or_else(|| ClusterError::Encode {
            what: "kube-dns Service",
            detail: format!(
                "no 10th IP in serviceSubnet {:?}",
                cfg.cluster.networking.service_subnet
            ),
        })?;
    let ns = "kube-system";
    Ok(Some(CoreDns {
        service_account: obj(
            "ServiceAccount",
            json!({"metadata": {"name": "coredns", "namespace": ns}}),
        )?,
        cluster_role: obj(
            "ClusterRole",
            json!({"metadata": {"name": "system:coredns"}, "rules": [
                {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": ["list", "watch"]},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}
            ]}),
        )?,
        cluster_role_binding: obj(
            "ClusterRoleBinding",
            json!({"metadata": {"name": "system:coredns"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
            "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": ns}]}),
        )?,
        config_map: recorded(obj(
            "ConfigMap",
            json!({"metadata": {"name": "coredns", "namespace": ns},
            "data": {"Corefile": corefile(&cfg.cluster.networking.dns_domain)}}),
        )?)?,
        deployment: recorded(obj(
            "Deployment",
            json!({
                "metadata": {"name": "coredns", "namespace": ns, "labels": {"k8s-app": "kube-dns"}},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                    "template": {
                        "metadata": {"labels": {"k8s-app": "kube-dns"}},
                        "spec": {
                            "priorityClassName": "system-cluster-critical",
                            "serviceAccountName": "coredns",
                            "nodeSelector": {"kubernetes.io/os": "linux"},
                            "tolerations": tolerations,
                            "containers": [{
                                "name": "coredns", "image": image, "imagePullPolicy": "IfNotPresent",
                                "args": ["-conf", "/etc/coredns/Corefile"],
                                "resources": {"limits": {"memory": "170Mi"}, "requests": {"cpu": "100m", "memory": "70Mi"}},
                                "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": true}],
                                "ports": [{"containerPort": 53, "name": "dns", "protocol": "UDP"},
                                    {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                                    {"containerPort": 9153, "name": "metrics", "protocol": "TCP"}],
                                "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                    "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}},
                                "livenessProbe": {"httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"},
                                    "initialDelaySeconds": 60, "timeoutSeconds": 5, "successThreshold": 1, "failureThreshold": 5},
                                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181, "scheme": "HTTP"}}
                            }],
                            "dnsPolicy": "Default",
                            "volumes": [{"name": "config-volume", "configMap": {"name": "coredns",
                                "items": [{"key": "Corefile", "path": "Corefile"}]}}]
                        }
                    }
                }
            }),
        )?)?,
        service: obj(
            "Service",
            json!({
                "metadata": {"name": "kube-dns", "namespace": ns,
                    "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"},
                    "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}},
                "spec": {"clusterIP": dns_ip.to_string(), "selector": {"k8s-app": "kube-dns"}, "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                    {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]}
            }),
        )?,
    }))
}

/// Every kube-proxy object.
#[derive(Debug, Clone)]
pub struct KubeProxy {
    /// kube-system/kube-proxy.
    pub service_account: ServiceAccount,
    /// kubeadm:node-proxier → system:node-proxier.
    pub cluster_role_binding: ClusterRoleBinding,
    /// kube-system/kube-proxy (config.conf + kubeconfig.conf).
    pub config_map: ConfigMap,
    /// kube-system/kube-proxy: read the ConfigMap.
    pub role: Role,
    /// kube-system/kube-proxy → bootstrap group.
    pub role_binding: RoleBinding,
    /// kube-system/kube-proxy.
    pub daemon_set: DaemonSet,
}

/// kube-proxy, or `None` when `proxy.disabled`.
pub fn kube_proxy(cfg: &InitConfig) -> Result<Option<KubeProxy>, ClusterError> {
    if cfg.cluster.proxy.disabled {
        return Ok(None);
    }
    let ns = "kube-system";
    let image = kubeadm_api::images::control_plane_image(&cfg.cluster, &cfg.version, "kube-proxy");
    let config =
        kubeadm_api::encode::to_yaml(&cfg.kube_proxy).map_err(|e| ClusterError::Encode {
            what: "KubeProxyConfiguration",
            detail: e.to_string(),
        })?;
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt\n    server: {}\n  name: default\ncontexts:\n- context:\n    cluster: default\n    namespace: default\n    user: default\n  name: default\ncurrent-context: default\nusers:\n- name: default\n  user:\n    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token\n",
        cfg.control_plane_url()
    );
    Ok(Some(KubeProxy {
        service_account: obj(
            "ServiceAccount",
            json!({"metadata": {"name": "kube-proxy", "namespace": ns}}),
        )?,
        cluster_role_binding: obj(
            "ClusterRoleBinding",
            json!({"metadata": {"name": "kubeadm:node-proxier"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:node-proxier"},
            "subjects": [{"kind": "ServiceAccount", "name": "kube-proxy", "namespace": ns}]}),
        )?,
        config_map: recorded(obj(
            "ConfigMap",
            json!({"metadata": {"name": "kube-proxy", "namespace": ns, "labels": {"app": "kube-proxy"}},
            "data": {"config.conf": config, "kubeconfig.conf": kubeconfig}}),
        )?)?,
        role: obj(
            "Role",
            json!({"metadata": {"name": "kube-proxy", "namespace": ns}, "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["kube-proxy"], "verbs": ["get"]}]}),
        )?,
        role_binding: obj(
            "RoleBinding",
            json!({"metadata": {"name": "kube-proxy", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kube-proxy"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": crate::token::DEFAULT_GROUP}]}),
        )?,
        daemon_set: recorded(obj(
            "DaemonSet",
            json!({
                "metadata": {"name": "kube-proxy", "namespace": ns, "labels": {"k8s-app": "kube-proxy"}},
                "spec": {
                    "selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
                    "updateStrategy": {"type": "RollingUpdate"},
                    "template": {
                        "metadata": {"labels": {"k8s-app": "kube-proxy"}},
                        "spec": {
                            "priorityClassName": "system-node-critical",
                            "hostNetwork": true,
                            "serviceAccountName": "kube-proxy",
                            "nodeSelector": {"kubernetes.io/os": "linux"},
                            "tolerations": [{"operator": "Exists"}],
                            "containers": [{
                                "name": "kube-proxy", "image": image, "imagePullPolicy": "IfNotPresent",
                                "command": ["/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf",
                                    "--hostname-override=$(NODE_NAME)"],
                                "securityContext": {"privileged": true},
                                "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                                "volumeMounts": [{"mountPath": "/var/lib/kube-proxy", "name": "kube-proxy"},
                                    {"mountPath": "/run/xtables.lock", "name": "xtables-lock"},
                                    {"mountPath": "/lib/modules", "name": "lib-modules", "readOnly": true}]
                            }],
                            "volumes": [{"name": "kube-proxy", "configMap": {"name": "kube-proxy"}},
                                {"name": "xtables-lock", "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}},
                                {"name": "lib-modules", "hostPath": {"path": "/lib/modules"}}]
                        }
                    }
                }
            }),
        )?)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubeadm_api::defaults::HostFacts;

    fn cfg() -> InitConfig {
        let (mut init, mut cluster, k, p) = InitConfig::start(Default::default());
        cluster.kubernetes_version = "v1.31.2".into();
        init.node_registration.name = "cp".into();
        init.local_api_endpoint.advertise_address = "10.0.0.1".into();
        let facts = HostFacts {
            hostname: "cp".into(),
            default_ip: Some("10.0.0.1".parse().unwrap()),
            ..Default::default()
        };
        InitConfig::complete(init, cluster, k, p, &facts, true, "test").unwrap()
    }

    #[test]
    fn coredns_objects() {
        let c = coredns(&cfg()).unwrap().unwrap();
        assert_eq!(
            c.service.spec.as_ref().unwrap().cluster_ip.as_deref(),
            Some("10.96.0.10")
        );
        let img = c.deployment.spec.template.spec.unwrap().containers[0]
            .image
            .clone()
            .unwrap();
        assert_eq!(img, "registry.k8s.io/coredns/coredns:v1.11.3");
        assert!(
            c.config_map.data.unwrap()["Corefile"]
                .contains("kubernetes cluster.local in-addr.arpa")
        );
        let mut disabled = cfg();
        disabled.cluster.dns.disabled = true;
        assert!(coredns(&disabled).unwrap().is_none());
    }

    #[test]
    fn kube_proxy_objects() {
        let p = kube_proxy(&cfg()).unwrap().unwrap();
        let img = p.daemon_set.spec.template.spec.unwrap().containers[0]
            .image
            .clone()
            .unwrap();
        assert_eq!(img, "registry.k8s.io/kube-proxy:v1.31.2");
        let data = p.config_map.data.unwrap();
        assert!(
            data["config.conf"].contains("kind: KubeProxyConfiguration"),
            "{}",
            data["config.conf"]
        );
        assert!(data["kubeconfig.conf"].contains("server: https://10.0.0.1:6443"));
        assert_eq!(p.cluster_role_binding.role_ref.name, "system:node-proxier");
    }
}
