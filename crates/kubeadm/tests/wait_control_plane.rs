//! `kubeadm init phase wait-control-plane` under a temp --rootfs: the kubelet's healthz, the
//! API server, and (with `WaitForAllControlPlaneComponents`) the controller-manager and
//! scheduler at the addresses of our own manifests; a component that stays unhealthy is named
//! in the error with where to look, within the configured timeout.
#![allow(clippy::unwrap_used)]

#[path = "support/init_config.rs"]
mod init_config;

use std::time::Instant;

use init_config::InitConfig;
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

/// The configuration of these tests: the node's CRI socket (named in the hints) and 1 s
/// health timeouts, with the API server's and the health stand-ins' ports.
fn setup(version: &str, api_port: u16, kubelet: u16, kcm: u16, sched: u16) -> InitConfig {
    InitConfig::new(version, api_port)
        .health_ports(kubelet, kcm, sched)
        .cri_socket("unix:///run/test/cri.sock")
        .health_timeout("1s")
}

/// Writes the manifests, then runs the phase; returns (success, stdout, stderr, seconds).
fn wait(config: &InitConfig) -> (bool, String, String, f64) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config
        .write(&dir.path().join("kubeadm.yaml"))
        .display()
        .to_string();
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
    let (ok, stdout, stderr, took) = wait(
        &setup(
            "v1.33.0",
            port,
            kubelet.port(),
            closed_port(),
            closed_port(),
        )
        .feature_gate("WaitForAllControlPlaneComponents", false),
    );
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
    let config = setup(
        "v1.34.0",
        server.addr().port(),
        kubelet.port(),
        kcm.port(),
        sched.port(),
    );
    let (ok, stdout, stderr, _) = wait(&config);
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
    let (ok, stdout, stderr, _) = wait(&config);
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
    let (ok, stdout, stderr, _) = wait(&setup(
        "v1.33.0",
        closed_port(),
        port,
        closed_port(),
        closed_port(),
    ));
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
    let (ok, stdout, stderr, _) = wait(&setup(
        "v1.32.0",
        server.addr().port(),
        0,
        closed_port(),
        closed_port(),
    ));
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
