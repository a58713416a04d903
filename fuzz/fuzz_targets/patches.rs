//! `--patches` directories: the input is a file name (first line) and its content (the rest),
//! parsed as kubeadm parses a patches directory, then applied to the targets it names (a static
//! Pod and the kubelet's configuration). Nothing may panic.
#![no_main]

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use kubeadm_render::patches::PatchSet;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fn pod() -> Pod {
    Pod {
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "kube-apiserver".into(),
                image: Some("registry.k8s.io/kube-apiserver:v1.33.0".into()),
                command: Some(vec!["kube-apiserver".into(), "--secure-port=6443".into()]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let Ok(name) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let content = data.get(split + 1..).unwrap_or_default().to_vec();
    let set = match PatchSet::parse("/patches", vec![(name.to_string(), content)]) {
        Ok(s) => s,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for target in ["kube-apiserver", "etcd"] {
        let _ = set.apply_pod(target, pod());
    }
    let mut kubelet = json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "systemd",
        "clusterDNS": ["10.96.0.10"],
    });
    let _ = set.apply("kubeletconfiguration", &mut kubelet);
    let mut v = json!({"spec": {"containers": [{"name": "etcd"}]}});
    let _ = set.apply("corednsdeployment", &mut v);
});
