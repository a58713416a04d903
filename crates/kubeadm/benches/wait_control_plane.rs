//! Benchmark: how long after the API server turns ready does `kubeadm init phase
//! wait-control-plane` return? Runs the real binary against the in-repo test API server kept
//! "not ready" (503 on /livez) while kubeadm polls, flips it to ready, and times the flip to the
//! process's exit (which includes the process exiting). The kubelet, controller-manager and
//! scheduler are health stand-ins that are healthy from the start; v1.34, so every component
//! is checked. Target: median ≤ 100 ms.
//!
//! `cargo bench -p kubeadm --bench wait_control_plane` (RUNS=n to change the count).
#![allow(missing_docs, clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kubeadm_testapi::TestApiServer;
use kubeadm_testapi::health::HealthServer;
use kubeadm_testapi::pki::TestPki;

fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(21);
    let kubeadm = env!("CARGO_BIN_EXE_kubeadm");
    let pki = TestPki::generate().unwrap();
    let server = TestApiServer::start(pki.server_config()).unwrap();
    let kubelet = HealthServer::http(true).unwrap();
    let kcm = HealthServer::https(&pki.serving_cert_pem, &pki.serving_key_pem, true).unwrap();
    let sched = HealthServer::https(&pki.serving_cert_pem, &pki.serving_key_pem, true).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let cfg = dir.path().join("kubeadm.yaml");
    std::fs::write(
        &cfg,
        format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 127.0.0.1\n  bindPort: {}\nnodeRegistration:\n  name: cp-1\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.34.0\ncontrollerManager:\n  extraArgs:\n  - name: secure-port\n    value: \"{}\"\nscheduler:\n  extraArgs:\n  - name: secure-port\n    value: \"{}\"\n---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nhealthzPort: {}\n",
            server.addr().port(),
            kcm.port(),
            sched.port(),
            kubelet.port()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(kubeadm)
            .arg("--rootfs")
            .arg(&root)
            .args(args)
            .arg("--config")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    assert!(
        run(&["init", "phase", "control-plane", "all"])
            .wait()
            .unwrap()
            .success()
    );
    // For reference: a whole run (start, parse, probe four healthy endpoints, exit).
    server.set_ready(true);
    let start = Instant::now();
    assert!(
        run(&["init", "phase", "wait-control-plane"])
            .wait()
            .unwrap()
            .success()
    );
    let whole = start.elapsed();
    let mut overheads = Vec::new();
    for _ in 0..runs {
        server.set_ready(false);
        let mut child = run(&["init", "phase", "wait-control-plane"]);
        // Let it start and poll the not-ready API server for a while. The extra 0–99 ms keep
        // the flip from landing at the same point of the poll cycle every run (process start
        // takes about as long each time).
        let jitter = u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
                % 100,
        );
        std::thread::sleep(Duration::from_millis(600 + jitter));
        assert!(child.try_wait().unwrap().is_none(), "returned before ready");
        let flipped = Instant::now();
        server.set_ready(true);
        let status = child.wait().unwrap();
        overheads.push(flipped.elapsed());
        assert!(status.success());
    }
    overheads.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "wait-control-plane: API server ready -> phase returned: median {:.1} ms, min {:.1} ms, max {:.1} ms over {} runs (target <= 100 ms)",
        ms(overheads[overheads.len() / 2]),
        ms(overheads[0]),
        ms(overheads[overheads.len() - 1]),
        overheads.len()
    );
    println!(
        "(a whole run with everything healthy from the start: {:.1} ms)",
        ms(whole)
    );
}
