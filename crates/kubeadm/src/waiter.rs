//! Waiting for health endpoints: the kubelet's healthz, the API server's readyz/livez, the
//! controller-manager's and scheduler's health ports. Used by `init`'s wait-control-plane phase
//! and by `join`. Every endpoint is polled in parallel every [`POLL_INTERVAL`] until it answers
//! HTTP 200 or the timeout passes; HTTPS endpoints are checked without verifying the
//! certificate (they serve self-signed ones; upstream does the same) and without credentials.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kubeadm_render::controlplane;

/// Nanoseconds this process spent waiting for other components (the upgrade's static Pod
/// restarts and health endpoints, its health-check Job): what `KUBEADM_TIMINGS` reports
/// apart from the process's own work.
static WAITED_NANOS: AtomicU64 = AtomicU64::new(0);

/// Adds `d` to the time spent waiting for other components.
pub fn record_wait(d: Duration) {
    let n = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    WAITED_NANOS.fetch_add(n, Ordering::Relaxed);
}

/// The time spent waiting for other components so far.
pub fn waited() -> Duration {
    Duration::from_nanos(WAITED_NANOS.load(Ordering::Relaxed))
}

/// How often an endpoint is polled. Well under upstream's 500 ms, so that init moves on within
/// tens of milliseconds of a component turning healthy (see the README's benchmark).
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Longest wait for one probe's answer (a hung component must not hide behind one request).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// One health endpoint to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// What the operator reads: `kube-apiserver`, `kube-scheduler`, `The kubelet`, `The API server`.
    pub name: String,
    /// The full URL (`https://127.0.0.1:10259/livez`, `http://127.0.0.1:10248/healthz`).
    pub url: String,
}

impl Endpoint {
    /// An endpoint from a name and URL.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        Endpoint {
            name: name.into(),
            url: url.into(),
        }
    }
}

/// An endpoint that answered 200, and after how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthy {
    /// The endpoint's name.
    pub name: String,
    /// How long it took.
    pub after: Duration,
}

/// An endpoint that did not become healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unhealthy {
    /// The endpoint's name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// The last failure (`connection refused`, `HTTP 503`).
    pub last_error: String,
}

/// Why waiting failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// A URL could not be used.
    #[error("cannot check {url}: {detail}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        detail: String,
    },
    /// Some endpoints were not healthy within the timeout.
    #[error("{}", describe_unhealthy(.unhealthy, *.timeout))]
    Timeout {
        /// Every endpoint that stayed unhealthy.
        unhealthy: Vec<Unhealthy>,
        /// The timeout that passed.
        timeout: Duration,
    },
}

fn describe_unhealthy(list: &[Unhealthy], timeout: Duration) -> String {
    let parts: Vec<String> = list
        .iter()
        .map(|u| format!("{} at {}: {}", u.name, u.url, u.last_error))
        .collect();
    format!(
        "not healthy after {}: {}",
        go_duration(timeout),
        parts.join("; ")
    )
}

/// How progress is shown while waiting.
// `Plain` and `Quiet` are for callers that own the terminal (join, tests).
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A spinner when stdout is a terminal, plain lines otherwise.
    Auto,
    /// Plain lines only (logs, tests).
    Plain,
    /// Nothing.
    Quiet,
}

/// What to print while waiting.
#[derive(Debug, Clone)]
pub struct WaitOptions {
    /// Line prefix, without brackets: `control-plane-check`, `kubelet-check`, `api-check`.
    pub prefix: String,
    /// Print `Checking <name> at <url>` for each endpoint first (upstream does for the control
    /// plane check).
    pub announce: bool,
    /// Spinner or lines.
    pub progress: Progress,
}

impl WaitOptions {
    /// Options with `prefix`, no announcement, [`Progress::Auto`].
    pub fn new(prefix: impl Into<String>) -> Self {
        WaitOptions {
            prefix: prefix.into(),
            announce: false,
            progress: Progress::Auto,
        }
    }
}

/// A duration as Go prints one (`4m0s`, `1.5s`, `250ms`): upstream's messages use that form.
pub fn go_duration(d: Duration) -> String {
    kubeadm_api::Duration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)).to_string()
}

/// Checks that `url` can be probed, as [`WaitError::BadUrl`] when not.
fn check_url(url: &str) -> Result<(), WaitError> {
    kubeadm_http::Url::parse(url)
        .map(|_| ())
        .map_err(|e| WaitError::BadUrl {
            url: e.url,
            detail: e.detail,
        })
}

/// One GET of `url`, without verifying the server's certificate (health ports serve
/// self-signed ones); `Ok(())` on HTTP 200, else what went wrong.
pub async fn probe(url: &str) -> Result<(), String> {
    let tls = kubeadm_http::insecure_client_config().map_err(|e| e.to_string())?;
    let client = kubeadm_http::Client::new(PROBE_TIMEOUT)
        .with_tls(tls)
        // A health answer is a word or a short list of checks.
        .max_body(64 << 10);
    match client.send(&kubeadm_http::Request::get(url)).await {
        Err(e) => Err(e.to_string()),
        Ok(r) if r.status == http::StatusCode::OK => Ok(()),
        Ok(r) => Err(format!("HTTP status {}", r.status.as_u16())),
    }
}

/// Polls one endpoint every [`POLL_INTERVAL`] (through kubeadm-effects' one wait loop) until
/// it is healthy or `deadline` passes.
async fn wait_one(url: &str, start: Instant, deadline: Instant) -> Result<Duration, String> {
    // Spawned on the runtime's threads: the last error behind a lock, not a RefCell.
    let last = std::sync::Mutex::new(String::new());
    let last_ref = &last;
    let healthy = kubeadm_effects::poll::poll_until_async(
        deadline.saturating_duration_since(Instant::now()),
        kubeadm_effects::poll::Schedule::every(POLL_INTERVAL),
        move || async move {
            match probe(url).await {
                Ok(()) => true,
                Err(e) => {
                    if let Ok(mut l) = last_ref.lock() {
                        *l = e;
                    }
                    false
                }
            }
        },
        tokio::time::sleep,
    )
    .await;
    match healthy {
        Some(_) => Ok(start.elapsed()),
        None => Err(last.into_inner().unwrap_or_else(|p| p.into_inner())),
    }
}

enum Shown {
    Quiet,
    Lines,
    Spinner(indicatif::ProgressBar),
}

impl Shown {
    fn line(&self, text: &str) {
        match self {
            Shown::Quiet => {}
            Shown::Lines => println!("{text}"),
            Shown::Spinner(pb) => pb.println(text),
        }
    }
}

/// Waits until every endpoint answers HTTP 200, polling each in parallel every
/// [`POLL_INTERVAL`], for at most `timeout` each. Prints `[<prefix>] <name> is healthy after
/// <d>` (or `is not healthy after`) per endpoint; on a terminal a spinner names the endpoints
/// still pending. Returns how long each took, or every endpoint that stayed unhealthy.
pub async fn wait_for(
    endpoints: &[Endpoint],
    timeout: Duration,
    opts: &WaitOptions,
) -> Result<Vec<Healthy>, WaitError> {
    for e in endpoints {
        check_url(&e.url)?;
    }
    let prefix = &opts.prefix;
    let shown = match opts.progress {
        Progress::Quiet => Shown::Quiet,
        Progress::Auto if std::io::stdout().is_terminal() => {
            // On stdout, where the plain lines would go.
            let pb = indicatif::ProgressBar::with_draw_target(
                None,
                indicatif::ProgressDrawTarget::stdout(),
            );
            pb.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            pb.enable_steady_tick(Duration::from_millis(100));
            Shown::Spinner(pb)
        }
        _ => Shown::Lines,
    };
    if opts.announce {
        for e in endpoints {
            shown.line(&format!("[{prefix}] Checking {} at {}", e.name, e.url));
        }
    }
    let start = Instant::now();
    let deadline = start + timeout;
    let mut set = tokio::task::JoinSet::new();
    for (i, e) in endpoints.iter().enumerate() {
        let url = e.url.clone();
        set.spawn(async move { (i, wait_one(&url, start, deadline).await) });
    }
    let mut pending: Vec<bool> = vec![true; endpoints.len()];
    let mut healthy = Vec::new();
    let mut unhealthy = Vec::new();
    let update = |pending: &[bool]| {
        if let Shown::Spinner(pb) = &shown {
            let names: Vec<&str> = endpoints
                .iter()
                .zip(pending)
                .filter(|(_, p)| **p)
                .map(|(e, _)| e.name.as_str())
                .collect();
            if names.is_empty() {
                return;
            }
            pb.set_message(format!("[{prefix}] waiting for {}", names.join(", ")));
        }
    };
    update(&pending);
    while let Some(joined) = set.join_next().await {
        let Ok((i, result)) = joined else {
            continue;
        };
        pending[i] = false;
        let e = &endpoints[i];
        match result {
            Ok(after) => {
                shown.line(&format!(
                    "[{prefix}] {} is healthy after {}",
                    e.name,
                    go_duration(after)
                ));
                healthy.push(Healthy {
                    name: e.name.clone(),
                    after,
                });
            }
            Err(last_error) => {
                shown.line(&format!(
                    "[{prefix}] {} is not healthy after {}",
                    e.name,
                    go_duration(start.elapsed())
                ));
                unhealthy.push(Unhealthy {
                    name: e.name.clone(),
                    url: e.url.clone(),
                    last_error,
                });
            }
        }
        update(&pending);
    }
    if let Shown::Spinner(pb) = &shown {
        pb.finish_and_clear();
    }
    if unhealthy.is_empty() {
        Ok(healthy)
    } else {
        // Keep the endpoints' order, not the order they gave up in.
        unhealthy.sort_by_key(|u| endpoints.iter().position(|e| e.name == u.name));
        Err(WaitError::Timeout { unhealthy, timeout })
    }
}

/// [`wait_for`] on a runtime of its own, for callers outside async code.
pub fn wait_for_blocking(
    endpoints: &[Endpoint],
    timeout: Duration,
    opts: &WaitOptions,
) -> Result<Vec<Healthy>, WaitError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| WaitError::BadUrl {
            url: String::new(),
            detail: format!("cannot start the async runtime: {e}"),
        })?;
    rt.block_on(wait_for(endpoints, timeout, opts))
}

/// The kubelet's healthz endpoint from a KubeletConfiguration (`healthzBindAddress`,
/// `healthzPort`; kubeadm-api's defaults, 127.0.0.1:10248, where they are left out). `None`
/// when the port is 0 (check disabled).
pub fn kubelet_endpoint(kubelet_config: &serde_json::Value) -> Option<Endpoint> {
    let address = kubelet_config
        .get("healthzBindAddress")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or(kubeadm_api::component::KUBELET_HEALTHZ_BIND_ADDRESS);
    let port = kubelet_config
        .get("healthzPort")
        .and_then(|v| v.as_i64())
        .unwrap_or(kubeadm_api::component::KUBELET_HEALTHZ_PORT.into());
    if port == 0 {
        return None;
    }
    let host = if address.contains(':') {
        format!("[{address}]")
    } else {
        address.to_string()
    };
    Some(Endpoint::new(
        "The kubelet",
        format!("http://{host}:{port}/healthz"),
    ))
}

/// The value of `--<flag>` in a static Pod's container command, as upstream reads it
/// (`--flag=value`, or `--flag value` in one element).
fn flag(pod: &Pod, component: &str, flag: &str) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let container = spec.containers.iter().find(|c| {
        c.command
            .as_ref()
            .and_then(|cmd| cmd.first())
            .is_some_and(|c0| c0 == component)
    })?;
    let mut found = None;
    for line in container.command.iter().flatten() {
        let line = line.trim();
        let Some(rest) = line
            .strip_prefix("--")
            .or_else(|| line.strip_prefix('-'))
            .and_then(|r| r.strip_prefix(flag))
        else {
            continue;
        };
        if let Some(v) = rest.strip_prefix('=').or_else(|| rest.strip_prefix(' ')) {
            found = Some(v.trim().to_string());
        }
    }
    found
}

/// The control-plane components' health endpoints as upstream derives them from the static Pod
/// manifests: kube-apiserver `https://<--advertise-address, else advertise>:<--secure-port,
/// else 6443>/livez`, kube-controller-manager `https://<--bind-address, else
/// 127.0.0.1>:<--secure-port, else 10257>/healthz`, kube-scheduler the same on 10259 with
/// `/livez`. `pods` maps component name to its manifest; a missing one is an error naming it.
pub fn control_plane_endpoints(
    pods: &[(String, Pod)],
    advertise_address: &str,
) -> Result<Vec<Endpoint>, String> {
    // The default ports are the manifests' own (kubeadm-render owns them).
    let cm_port = controlplane::CONTROLLER_MANAGER_PORT.to_string();
    let sched_port = controlplane::SCHEDULER_PORT.to_string();
    let table = [
        (
            "kube-apiserver",
            "advertise-address",
            advertise_address,
            "6443",
            "livez",
        ),
        (
            "kube-controller-manager",
            "bind-address",
            "127.0.0.1",
            cm_port.as_str(),
            "healthz",
        ),
        (
            "kube-scheduler",
            "bind-address",
            "127.0.0.1",
            sched_port.as_str(),
            "livez",
        ),
    ];
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for (name, addr_flag, addr_default, port_default, path) in table {
        let Some((_, pod)) = pods.iter().find(|(n, _)| n == name) else {
            missing.push(name);
            continue;
        };
        let addr = flag(pod, name, addr_flag).unwrap_or_else(|| addr_default.to_string());
        let port = flag(pod, name, "secure-port").unwrap_or_else(|| port_default.to_string());
        let host = if addr.contains(':') {
            format!("[{addr}]")
        } else {
            addr
        };
        out.push(Endpoint::new(name, format!("https://{host}:{port}/{path}")));
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(format!("no static Pod manifest for {}", missing.join(", ")))
    }
}

/// What to tell the operator when the kubelet or a control-plane component stays unhealthy
/// (upstream's advice, with this node's CRI socket).
pub fn troubleshooting(cri_socket: &str) -> String {
    format!(
        "the kubelet may not be running or may be misconfigured: look with `systemctl status kubelet` and `journalctl -xeu kubelet`; a control plane component may have crashed or exited: list the containers with `crictl --runtime-endpoint {cri_socket} ps -a | grep kube | grep -v pause` and read the failing one's logs with `crictl --runtime-endpoint {cri_socket} logs CONTAINERID`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn healthy_and_unhealthy_endpoints_over_http_and_https() {
        let pki = kubeadm_testapi::pki::TestPki::generate().unwrap();
        let kubelet = kubeadm_testapi::health::HealthServer::http(true).unwrap();
        let sched = kubeadm_testapi::health::HealthServer::https(
            &pki.serving_cert_pem,
            &pki.serving_key_pem,
            false,
        )
        .unwrap();
        let kcm = kubeadm_testapi::health::HealthServer::https(
            &pki.serving_cert_pem,
            &pki.serving_key_pem,
            true,
        )
        .unwrap();
        let eps = vec![
            Endpoint::new("The kubelet", format!("{}/healthz", kubelet.url())),
            Endpoint::new("kube-controller-manager", format!("{}/healthz", kcm.url())),
            Endpoint::new("kube-scheduler", format!("{}/livez", sched.url())),
        ];
        let mut opts = WaitOptions::new("control-plane-check");
        opts.progress = Progress::Quiet;
        let err = rt()
            .block_on(wait_for(&eps, Duration::from_millis(400), &opts))
            .unwrap_err();
        let WaitError::Timeout { unhealthy, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(unhealthy.len(), 1, "{err}");
        assert_eq!(unhealthy[0].name, "kube-scheduler");
        assert!(unhealthy[0].last_error.contains("503"), "{err}");
        assert!(err.to_string().contains(&sched.url()), "{err}");
        // Polled repeatedly, at least every 250 ms.
        assert!(sched.hits() >= 3, "{} polls", sched.hits());
        sched.set_healthy(true);
        let ok = rt()
            .block_on(wait_for(&eps, Duration::from_secs(5), &opts))
            .unwrap();
        assert_eq!(ok.len(), 3);
    }

    #[test]
    fn endpoints_from_manifests_follow_flags() {
        let pod = |cmd: &[&str]| -> Pod {
            serde_json::from_value(serde_json::json!({
                "spec": {"containers": [{"name": "c", "command": cmd}]}
            }))
            .unwrap()
        };
        let pods = vec![
            (
                "kube-apiserver".to_string(),
                pod(&[
                    "kube-apiserver",
                    "--advertise-address=10.0.0.1",
                    "--secure-port=7443",
                ]),
            ),
            (
                "kube-controller-manager".to_string(),
                pod(&["kube-controller-manager", "--bind-address=127.0.0.1"]),
            ),
            (
                "kube-scheduler".to_string(),
                pod(&[
                    "kube-scheduler",
                    "--secure-port=11259",
                    "--bind-address=::1",
                ]),
            ),
        ];
        let eps = control_plane_endpoints(&pods, "192.168.0.9").unwrap();
        let urls: Vec<&str> = eps.iter().map(|e| e.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://10.0.0.1:7443/livez",
                "https://127.0.0.1:10257/healthz",
                "https://[::1]:11259/livez"
            ]
        );
        let err = control_plane_endpoints(&pods[..1], "x").unwrap_err();
        assert!(
            err.contains("kube-controller-manager, kube-scheduler"),
            "{err}"
        );
        assert_eq!(
            kubelet_endpoint(&serde_json::json!({})).unwrap().url,
            "http://127.0.0.1:10248/healthz"
        );
        assert!(kubelet_endpoint(&serde_json::json!({"healthzPort": 0})).is_none());
    }
}
