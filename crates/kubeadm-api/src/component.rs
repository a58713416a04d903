//! Component configurations kubeadm writes for others: the KubeletConfiguration and the
//! KubeProxyConfiguration. A user's document is kept as given; kubeadm's defaults only fill
//! fields the user left out (upstream `componentconfigs` defaulting).

use serde_json::{Map, Value, json};

use crate::decode::{KUBE_PROXY_API_VERSION, KUBELET_API_VERSION};
use crate::net;
use crate::v1beta4::ClusterConfiguration;

/// Fills `target` with every key of `defaults` it lacks, recursing into objects present in
/// both. Lists and scalars the user gave are kept whole.
pub fn fill_missing(target: &mut Value, defaults: &Value) {
    if let (Value::Object(t), Value::Object(d)) = (target, defaults) {
        for (k, dv) in d {
            match t.get_mut(k) {
                Some(tv) => fill_missing(tv, dv),
                None => {
                    t.insert(k.clone(), dv.clone());
                }
            }
        }
    }
}

/// The kubelet's healthz address kubeadm defaults to (`healthzBindAddress`), and where the waits
/// look when the configuration leaves it out.
pub const KUBELET_HEALTHZ_BIND_ADDRESS: &str = "127.0.0.1";
/// The kubelet's healthz port kubeadm defaults to (`healthzPort`; 0 turns healthz off).
pub const KUBELET_HEALTHZ_PORT: u16 = 10248;

/// kubeadm's KubeletConfiguration defaults for this cluster.
pub fn kubelet_defaults(cluster: &ClusterConfiguration) -> Value {
    let dns: Vec<String> = net::dns_service_ip(&cluster.networking.service_subnet)
        .map(|ip| vec![ip.to_string()])
        .unwrap_or_default();
    json!({
        "apiVersion": KUBELET_API_VERSION,
        "kind": "KubeletConfiguration",
        "authentication": {
            "anonymous": {"enabled": false},
            "webhook": {"cacheTTL": "0s", "enabled": true},
            "x509": {"clientCAFile": format!("{}/ca.crt", cluster.certificates_dir)},
        },
        "authorization": {
            "mode": "Webhook",
            "webhook": {"cacheAuthorizedTTL": "0s", "cacheUnauthorizedTTL": "0s"},
        },
        "cgroupDriver": "systemd",
        "clusterDNS": dns,
        "clusterDomain": cluster.networking.dns_domain,
        "healthzBindAddress": KUBELET_HEALTHZ_BIND_ADDRESS,
        "healthzPort": KUBELET_HEALTHZ_PORT,
        "rotateCertificates": true,
        "staticPodPath": "/etc/kubernetes/manifests",
    })
}

/// kubeadm's KubeProxyConfiguration defaults for this cluster.
pub fn kube_proxy_defaults(cluster: &ClusterConfiguration, advertise_ipv6: bool) -> Value {
    json!({
        "apiVersion": KUBE_PROXY_API_VERSION,
        "kind": "KubeProxyConfiguration",
        "bindAddress": if advertise_ipv6 { "::" } else { "0.0.0.0" },
        "clientConnection": {"kubeconfig": "/var/lib/kube-proxy/kubeconfig.conf"},
        "clusterCIDR": cluster.networking.pod_subnet,
    })
}

/// The user's document (or an empty one) with kubeadm's defaults filled in.
pub fn complete(user: Option<&Value>, defaults: Value) -> Value {
    let mut v = user.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    fill_missing(&mut v, &defaults);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_values_win_and_defaults_fill_the_rest() {
        let mut c = ClusterConfiguration::default();
        crate::defaults::cluster(&mut c);
        let user = json!({"apiVersion": KUBELET_API_VERSION, "kind": "KubeletConfiguration", "cgroupDriver": "cgroupfs", "authentication": {"anonymous": {"enabled": true}}});
        let v = complete(Some(&user), kubelet_defaults(&c));
        assert_eq!(v["cgroupDriver"], "cgroupfs");
        assert_eq!(v["authentication"]["anonymous"]["enabled"], true);
        assert_eq!(v["authentication"]["webhook"]["enabled"], true);
        assert_eq!(v["clusterDNS"][0], "10.96.0.10");
    }
}
