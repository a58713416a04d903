//! `kubeadm init phase wait-control-plane` under a temp --rootfs: the kubelet's healthz, the
//! API server, and (with `WaitForAllControlPlaneComponents`) the controller-manager and
//! scheduler at the addresses of our own manifests; a component that stays unhealthy is named
//! in the error with where to look, within the configured timeout.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Instant;

use kubeadm_testapi::TestApiServer;
use kubeadm_testapi::health::HealthServer;
use kubeadm_testapi::pki::TestPki;
use kubeadm_testapi::support::kubeadm;

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Setup<'a> {
    version: &'a str,
    api_port: u16,
    kubelet_port: u16,
    kcm_port: u16,
    sched_port: u16,
    gates: &'a str,
}

fn write_config(dir: &Path, s: &Setup) -> String {
    let path = dir.join("kubeadm.yaml");
    std::fs::write(
        &path,
        format!(
            r#"apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 127.0.0.1
  bindPort: {}
nodeRegistration:
  name: cp-1
  criSocket: unix:///run/test/cri.sock
timeouts:
  controlPlaneComponentHealthCheck: 1s
  kubeletHealthCheck: 1s
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: {}
{}
controllerManager:
  extraArgs:
  - name: secure-port
    value: "{}"
scheduler:
  extraArgs:
  - name: secure-port
    value: "{}"
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
healthzPort: {}
"#,
            s.api_port, s.version, s.gates, s.kcm_port, s.sched_port, s.kubelet_port
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// Writes the manifests, then runs the phase; returns (success, stdout, stderr, seconds).
fn wait(s: &Setup) -> (bool, String, String, f64) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), s);
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let out = kubeadm(
        &root,
        &["init", "phase", "control-plane", "all", "--config", &cfg],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let start = Instant::now();
    let out = kubeadm(
        &root,
        &["init", "phase", "wait-control-plane", "--config", &cfg],
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        start.elapsed().as_secs_f64(),
    )
}

#[test]
fn unreachable_api_server_times_out_naming_it() {
    let kubelet = HealthServer::http(true).unwrap();
    let port = closed_port();
    let (ok, stdout, stderr, took) = wait(&Setup {
        version: "v1.33.0",
        api_port: port,
        kubelet_port: kubelet.port(),
        kcm_port: closed_port(),
        sched_port: closed_port(),
        gates: "featureGates:\n  WaitForAllControlPlaneComponents: false",
    });
    assert!(!ok, "{stdout}");
    assert!(
        stdout.contains("[kubelet-check] The kubelet is healthy after"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[api-check] Waiting for a healthy API server. This can take up to 1s"),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "The API server at https://127.0.0.1:{port}/readyz"
        )),
        "{stderr}"
    );
    // Where to look: the containers (with this node's CRI socket) and the kubelet's journal.
    assert!(
        stderr.contains(
            "crictl --runtime-endpoint unix:///run/test/cri.sock ps -a | grep kube | grep -v pause"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("journalctl -xeu kubelet"), "{stderr}");
    // Bounded by the configured timeout (1s), not the 4m default.
    assert!(took < 20.0, "took {took}s");
}

#[test]
fn a_component_that_never_gets_healthy_is_named() {
    let pki = TestPki::generate().unwrap();
    let server = TestApiServer::start(pki.server_config()).unwrap();
    let kubelet = HealthServer::http(true).unwrap();
    let kcm = HealthServer::https(&pki.serving_cert_pem, &pki.serving_key_pem, true).unwrap();
    let sched = HealthServer::https(&pki.serving_cert_pem, &pki.serving_key_pem, false).unwrap();
    // 1.34: every control-plane component is checked (the gate is locked on).
    let (ok, stdout, stderr, _) = wait(&Setup {
        version: "v1.34.0",
        api_port: server.addr().port(),
        kubelet_port: kubelet.port(),
        kcm_port: kcm.port(),
        sched_port: sched.port(),
        gates: "",
    });
    assert!(!ok, "{stdout}");
    assert!(
        stdout.contains("[control-plane-check] kube-apiserver is healthy after"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[control-plane-check] kube-controller-manager is healthy after"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[control-plane-check] kube-scheduler is not healthy after"),
        "{stdout}"
    );
    let sched_url = format!("https://127.0.0.1:{}/livez", sched.port());
    assert!(
        stderr.contains(&format!("kube-scheduler at {sched_url}: HTTP status 503")),
        "{stderr}"
    );
    assert!(!stderr.contains("kube-apiserver at"), "{stderr}");
    // Polled at least every 250 ms during the 1 s timeout.
    assert!(sched.hits() >= 4, "{} polls", sched.hits());

    // Once it is healthy the phase passes.
    sched.set_healthy(true);
    let (ok, stdout, stderr, _) = wait(&Setup {
        version: "v1.34.0",
        api_port: server.addr().port(),
        kubelet_port: kubelet.port(),
        kcm_port: kcm.port(),
        sched_port: sched.port(),
        gates: "",
    });
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "[control-plane-check] Checking kube-scheduler at {sched_url}"
        )),
        "{stdout}"
    );
}

#[test]
fn an_unhealthy_kubelet_is_named_before_the_control_plane() {
    let port = closed_port();
    let (ok, stdout, stderr, _) = wait(&Setup {
        version: "v1.33.0",
        api_port: closed_port(),
        kubelet_port: port,
        kcm_port: closed_port(),
        sched_port: closed_port(),
        gates: "",
    });
    assert!(!ok, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "[kubelet-check] Waiting for a healthy kubelet at http://127.0.0.1:{port}/healthz"
        )),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("The kubelet at http://127.0.0.1:{port}/healthz")),
        "{stderr}"
    );
    assert!(!stdout.contains("[control-plane-check]"), "{stdout}");
}

#[test]
fn kubelet_check_is_skipped_with_healthz_port_zero() {
    let pki = TestPki::generate().unwrap();
    let server = TestApiServer::start(pki.server_config()).unwrap();
    let (ok, stdout, stderr, _) = wait(&Setup {
        version: "v1.32.0",
        api_port: server.addr().port(),
        kubelet_port: 0,
        kcm_port: closed_port(),
        sched_port: closed_port(),
        gates: "",
    });
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "[kubelet-check] Skipping the kubelet health check because the healthz port is set to 0"
        ),
        "{stdout}"
    );
    // 1.32: the gate is off by default, so only the API server is checked.
    assert!(
        stdout.contains("[api-check] The API server is healthy after"),
        "{stdout}"
    );
}
