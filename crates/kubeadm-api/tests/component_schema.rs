//! KubeletConfiguration and KubeProxyConfiguration are decoded against their schemas (issue 13,
//! defect 4): unknown fields and wrong types are errors with file, line and field path; valid
//! documents (kubeadm's own defaults, a broad upstream-style document) pass and keep the user's
//! values.

use kubeadm_api::decode::decode;

const HEAD: &str = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n---\n";

fn kubelet(body: &str) -> String {
    format!("{HEAD}apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n{body}")
}

fn proxy(body: &str) -> String {
    format!(
        "{HEAD}apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n{body}"
    )
}

/// The component-base logging block both kinds share.
const LOGGING: &str = r#"logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
    text:
      infoBufferSize: "0"
  verbosity: 0"#;

fn err(text: &str) -> String {
    decode("kubeadm.yaml", text).unwrap_err().to_string()
}

#[test]
fn an_unknown_kubelet_field_is_named_with_its_line() {
    let e = err(&kubelet("cgroupDriver: systemd\nbogusField: 1\n"));
    assert!(e.starts_with("kubeadm.yaml:7:"), "{e}");
    assert!(e.contains("bogusField"), "{e}");
}

#[test]
fn a_number_where_a_string_is_declared_is_refused() {
    let e = err(&kubelet("cgroupDriver: 7\n"));
    assert!(e.starts_with("kubeadm.yaml:6:"), "{e}");
    assert!(e.contains("cgroupDriver"), "{e}");
}

#[test]
fn nested_wrong_types_name_their_path() {
    let e = err(&kubelet(
        "authentication:\n  webhook:\n    enabled: true\n    cacheTTL: soon\n",
    ));
    assert!(e.starts_with("kubeadm.yaml:9:"), "{e}");
    assert!(e.contains("authentication.webhook.cacheTTL"), "{e}");
    let e = err(&kubelet("evictionHard:\n  memory.available: [1]\n"));
    assert!(e.contains("kubeadm.yaml:7:"), "{e}");
    let e = err(&kubelet("maxPods: lots\n"));
    assert!(e.contains("maxPods"), "{e}");
    let e = err(&kubelet(
        "registerWithTaints:\n- key: a\n  effect: NoSchedule\n  colour: red\n",
    ));
    assert!(e.contains("colour"), "{e}");
}

#[test]
fn kube_proxy_fields_are_checked_too() {
    let e = err(&proxy("mode: ipvs\nipvs:\n  strictArp: true\n"));
    assert!(
        e.contains("kubeadm.yaml:8:") && e.contains("strictArp"),
        "{e}"
    );
    let e = err(&proxy("conntrack:\n  maxPerCore: many\n"));
    assert!(e.contains("conntrack.maxPerCore"), "{e}");
    let e = err(&proxy("clientConnection:\n  qps: fast\n"));
    assert!(e.contains("qps"), "{e}");
}

#[test]
fn broad_valid_documents_pass_and_keep_the_users_values() {
    let k = kubelet(&format!(
        r#"authentication:
  anonymous:
    enabled: false
  webhook:
    cacheTTL: 0s
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
  webhook:
    cacheAuthorizedTTL: 0s
    cacheUnauthorizedTTL: 0s
cgroupDriver: cgroupfs
clusterDNS:
- 10.96.0.10
clusterDomain: cluster.local
containerRuntimeEndpoint: ""
cpuManagerReconcilePeriod: 0s
evictionHard:
  memory.available: 100Mi
  nodefs.available: 10%
evictionPressureTransitionPeriod: 0s
featureGates:
  NodeSwap: true
fileCheckFrequency: 0s
healthzBindAddress: 127.0.0.1
healthzPort: 10248
httpCheckFrequency: 0s
imageMaximumGCAge: 0s
imageMinimumGCAge: 0s
kubeReserved:
  cpu: 100m
  memory: 1Gi
{LOGGING}
memorySwap:
  swapBehavior: LimitedSwap
failSwapOn: false
nodeStatusReportFrequency: 0s
nodeStatusUpdateFrequency: 0s
registerWithTaints:
- key: dedicated
  value: infra
  effect: NoSchedule
reservedMemory:
- numaNode: 0
  limits:
    memory: 1Gi
resolvConf: /run/systemd/resolve/resolv.conf
rotateCertificates: true
runtimeRequestTimeout: 0s
shutdownGracePeriod: 0s
shutdownGracePeriodCriticalPods: 0s
staticPodPath: /etc/kubernetes/manifests
streamingConnectionIdleTimeout: 0s
syncFrequency: 0s
tlsCipherSuites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
serverTLSBootstrap: true
volumeStatsAggPeriod: 0s
"#
    ));
    let docs = decode("kubeadm.yaml", &k).unwrap();
    let v = docs.kubelet.unwrap();
    assert_eq!(v["cgroupDriver"], "cgroupfs");
    assert_eq!(v["kubeReserved"]["memory"], "1Gi");
    assert_eq!(v["registerWithTaints"][0]["effect"], "NoSchedule");
    let p = proxy(&format!(
        r#"bindAddress: 0.0.0.0
clientConnection:
  acceptContentTypes: ""
  burst: 0
  contentType: ""
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
  qps: 0
clusterCIDR: 10.244.0.0/16
configSyncPeriod: 0s
conntrack:
  maxPerCore: null
  min: null
  tcpBeLiberal: false
  tcpCloseWaitTimeout: null
  tcpEstablishedTimeout: null
  udpStreamTimeout: 0s
  udpTimeout: 0s
detectLocal:
  bridgeInterface: ""
  interfaceNamePrefix: ""
detectLocalMode: ""
enableProfiling: false
healthzBindAddress: ""
hostnameOverride: ""
iptables:
  localhostNodePorts: null
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
ipvs:
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: ""
  strictARP: true
  syncPeriod: 0s
  tcpFinTimeout: 0s
  tcpTimeout: 0s
  udpTimeout: 0s
{LOGGING}
metricsBindAddress: ""
mode: ipvs
nftables:
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
nodePortAddresses: null
oomScoreAdj: null
portRange: ""
showHiddenMetricsForVersion: ""
winkernel:
  enableDSR: false
  forwardHealthCheckVip: false
  networkName: ""
  rootHnsEndpointName: ""
  sourceVip: ""
"#
    ));
    let docs = decode("kubeadm.yaml", &p).unwrap();
    assert_eq!(docs.kube_proxy.unwrap()["ipvs"]["strictARP"], true);
}

#[test]
fn kubeadms_own_defaults_pass_the_schema() {
    let mut c = kubeadm_api::v1beta4::ClusterConfiguration::default();
    kubeadm_api::defaults::cluster(&mut c);
    for v in [
        kubeadm_api::component::kubelet_defaults(&c),
        kubeadm_api::component::kube_proxy_defaults(&c, false),
    ] {
        let yaml = serde_saphyr::to_string(&v).unwrap();
        decode("defaults.yaml", &format!("{HEAD}{yaml}")).unwrap();
    }
}
