//! Property: migrating v1beta3 → v1beta4 keeps every field both versions have. A generated
//! v1beta3 file is decoded (which converts it), written as v1beta4 YAML, read back, converted down
//! to v1beta3 again, and must equal what was generated.

use std::collections::BTreeMap;

use kubeadm_api::decode::decode;
use kubeadm_api::encode::{to_value, to_yaml_documents};
use kubeadm_api::v1beta3 as b3;
use kubeadm_api::v1beta4::{
    ApiEndpoint, BootstrapToken, BootstrapTokenDiscovery, ExternalEtcd, HostPathMount,
    JoinControlPlane, Networking, Patches, Taint,
};
use kubeadm_api::{BootstrapTokenString, Duration};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;

fn word() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,8}[a-z0-9]"
}

fn opt_word() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), word()]
}

fn args() -> impl Strategy<Value = BTreeMap<String, String>> {
    btree_map(word(), "[a-zA-Z0-9=,./:-]{1,12}", 0..4)
}

fn volumes() -> impl Strategy<Value = Vec<HostPathMount>> {
    vec(
        (
            word(),
            word(),
            word(),
            any::<bool>(),
            prop_oneof![Just(String::new()), Just("DirectoryOrCreate".to_string())],
        )
            .prop_map(|(name, h, m, read_only, path_type)| HostPathMount {
                name,
                host_path: format!("/{h}"),
                mount_path: format!("/{m}"),
                read_only,
                path_type,
            }),
        0..3,
    )
}

fn duration() -> impl Strategy<Value = Option<Duration>> {
    option::of((1i64..10_000).prop_map(Duration::from_secs))
}

fn component() -> impl Strategy<Value = b3::ControlPlaneComponent> {
    (args(), volumes()).prop_map(|(extra_args, extra_volumes)| b3::ControlPlaneComponent {
        extra_args,
        extra_volumes,
    })
}

fn node_registration() -> impl Strategy<Value = b3::NodeRegistrationOptions> {
    (
        opt_word(),
        option::of(vec(
            (word(), opt_word()).prop_map(|(key, value)| Taint {
                key,
                value,
                effect: "NoSchedule".into(),
                time_added: None,
            }),
            0..2,
        )),
        args(),
        vec(word(), 0..3),
        prop_oneof![
            Just(String::new()),
            Just("Always".to_string()),
            Just("Never".to_string())
        ],
    )
        .prop_map(
            |(name, taints, kubelet_extra_args, ignore_preflight_errors, image_pull_policy)| {
                b3::NodeRegistrationOptions {
                    name,
                    cri_socket: "unix:///run/containerd/containerd.sock".into(),
                    taints,
                    kubelet_extra_args,
                    ignore_preflight_errors,
                    image_pull_policy,
                }
            },
        )
}

fn token() -> impl Strategy<Value = BootstrapTokenString> {
    ("[a-z0-9]{6}", "[a-z0-9]{16}")
        .prop_map(|(a, b)| BootstrapTokenString::parse(&format!("{a}.{b}")).unwrap())
}

fn cluster() -> impl Strategy<Value = b3::ClusterConfiguration> {
    let etcd = prop_oneof![
        (
            opt_word(),
            opt_word(),
            word(),
            args(),
            vec(word(), 0..2),
            vec(word(), 0..2)
        )
            .prop_map(|(r, t, d, a, s, p)| b3::Etcd {
                local: Some(b3::LocalEtcd {
                    image_repository: r,
                    image_tag: t,
                    data_dir: format!("/{d}"),
                    extra_args: a,
                    server_cert_sans: s,
                    peer_cert_sans: p
                }),
                external: None,
            }),
        vec(word(), 1..3).prop_map(|eps| b3::Etcd {
            local: None,
            external: Some(ExternalEtcd {
                endpoints: eps
                    .into_iter()
                    .map(|e| format!("https://{e}:2379"))
                    .collect(),
                ca_file: "/ca".into(),
                cert_file: "/cert".into(),
                key_file: "/key".into(),
            }),
        }),
    ];
    (
        etcd,
        (opt_word(), opt_word()),
        (component(), vec(word(), 0..3), duration()),
        component(),
        component(),
        (opt_word(), opt_word()),
        btree_map(word(), any::<bool>(), 0..3),
        (opt_word(), opt_word(), opt_word()),
    )
        .prop_map(
            |(
                etcd,
                (pod, dns_domain),
                (api, sans, timeout),
                cm,
                sched,
                (dns_repo, dns_tag),
                gates,
                (repo, name, cpe),
            )| {
                b3::ClusterConfiguration {
                    api_version: b3::API_VERSION.into(),
                    kind: "ClusterConfiguration".into(),
                    etcd,
                    networking: Networking {
                        service_subnet: "10.96.0.0/12".into(),
                        pod_subnet: pod,
                        dns_domain,
                    },
                    kubernetes_version: "v1.30.2".into(),
                    control_plane_endpoint: cpe,
                    api_server: b3::ApiServer {
                        extra_args: api.extra_args,
                        extra_volumes: api.extra_volumes,
                        cert_sans: sans,
                        timeout_for_control_plane: timeout,
                    },
                    controller_manager: cm,
                    scheduler: sched,
                    dns: b3::Dns {
                        image_repository: dns_repo,
                        image_tag: dns_tag,
                    },
                    certificates_dir: "/etc/kubernetes/pki".into(),
                    image_repository: repo,
                    feature_gates: gates,
                    cluster_name: name,
                }
            },
        )
}

fn init() -> impl Strategy<Value = b3::InitConfiguration> {
    (
        vec(
            (token(), opt_word(), duration()).prop_map(|(token, description, ttl)| {
                BootstrapToken {
                    token,
                    description,
                    ttl,
                    usages: vec!["signing".into()],
                    groups: vec!["system:bootstrappers:x".into()],
                    expires: None,
                }
            }),
            0..2,
        ),
        node_registration(),
        (opt_word(), 0i32..70000),
        "[0-9a-f]{64}",
        vec(word(), 0..2),
        option::of(word()),
    )
        .prop_map(
            |(bootstrap_tokens, node_registration, (_, port), key, skip_phases, patches)| {
                b3::InitConfiguration {
                    api_version: b3::API_VERSION.into(),
                    kind: "InitConfiguration".into(),
                    bootstrap_tokens,
                    node_registration,
                    local_api_endpoint: ApiEndpoint {
                        advertise_address: "10.0.0.1".into(),
                        bind_port: port,
                    },
                    certificate_key: key,
                    skip_phases,
                    patches: patches.map(|d| Patches {
                        directory: format!("/{d}"),
                    }),
                }
            },
        )
}

fn join() -> impl Strategy<Value = b3::JoinConfiguration> {
    (
        node_registration(),
        token(),
        vec("[0-9a-f]{64}", 0..2),
        any::<bool>(),
        duration(),
        option::of(("[0-9a-f]{64}", 1i32..65535)),
    )
        .prop_map(|(node_registration, token, hashes, skip, timeout, cp)| {
            b3::JoinConfiguration {
                api_version: b3::API_VERSION.into(),
                kind: "JoinConfiguration".into(),
                node_registration,
                ca_cert_path: "/etc/kubernetes/pki/ca.crt".into(),
                discovery: b3::Discovery {
                    bootstrap_token: Some(BootstrapTokenDiscovery {
                        token: token.to_string(),
                        api_server_endpoint: "10.0.0.1:6443".into(),
                        ca_cert_hashes: hashes.into_iter().map(|h| format!("sha256:{h}")).collect(),
                        unsafe_skip_ca_verification: skip,
                    }),
                    file: None,
                    tls_bootstrap_token: token.to_string(),
                    timeout,
                },
                control_plane: cp.map(|(key, port)| JoinControlPlane {
                    local_api_endpoint: ApiEndpoint {
                        advertise_address: "10.0.0.2".into(),
                        bind_port: port,
                    },
                    certificate_key: key,
                }),
                skip_phases: vec![],
                patches: None,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn migration_keeps_every_shared_field(c in cluster(), i in init(), j in join()) {
        let text = to_yaml_documents(&[to_value(&i).unwrap(), to_value(&c).unwrap(), to_value(&j).unwrap()]).unwrap();
        let docs = decode("generated.yaml", &text).unwrap();
        prop_assert_eq!(docs.source_api_version.as_deref(), Some(b3::API_VERSION));
        // Write what migrate writes (v1beta4) and read it back.
        let (init4, cluster4, join4) = (docs.init.unwrap(), docs.cluster.unwrap(), docs.join.unwrap());
        let text4 = to_yaml_documents(&[to_value(&init4).unwrap(), to_value(&cluster4).unwrap(), to_value(&join4).unwrap()]).unwrap();
        let back = decode("migrated.yaml", &text4).unwrap();
        prop_assert_eq!(back.source_api_version.as_deref(), Some(kubeadm_api::v1beta4::API_VERSION));
        let init4 = back.init.unwrap();
        let timeout = init4.timeouts.as_ref().and_then(|t| t.control_plane_component_health_check);
        prop_assert_eq!(b3::ClusterConfiguration::from_v1beta4(&back.cluster.unwrap(), timeout), c);
        prop_assert_eq!(b3::InitConfiguration::from_v1beta4(&init4), i);
        prop_assert_eq!(b3::JoinConfiguration::from_v1beta4(&back.join.unwrap()), j);
    }
}
