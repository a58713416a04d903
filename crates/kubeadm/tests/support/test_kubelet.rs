//! A stand-in kubelet for the end-to-end tests (shared by `join_e2e`, `join_rootfs` and
//! `upgrade_e2e`, each of which includes this file with `#[path]`; the node's paths are resolved
//! inside its root as kubeadm resolves them): it answers healthz, does the TLS bootstrap from
//! bootstrap-kubelet.conf as a kubelet does (CSR with the bootstrap token, waits for the signed
//! certificate, writes kubelet.conf), registers its Node (Ready, with its kubelet version), and
//! runs the static Pods of its manifests folder: each manifest's process (for the components
//! it has a binary for) and its mirror Pod, created with the kubelet's own credentials and
//! annotated with `kubernetes.io/config.hash` (a hash of the manifest). When a manifest changes
//! — as `kubeadm upgrade` swaps it — the process is restarted from the new one and the mirror
//! Pod is deleted and re-created with the new hash, as the real kubelet does.

// Each test crate that includes this file uses a different part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

/// Called with (component, manifest) whenever the kubelet (re)starts a static Pod: lets a test
/// play a component it has no binary for (e.g. make the test API server report the new
/// version, or never turn healthy).
pub type StartHook = Arc<dyn Fn(&str, &Value) + Send + Sync>;

/// One node's stand-in kubelet; stops (and kills its static Pods' processes) when dropped.
pub struct TestKubelet {
    root: PathBuf,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    children: Arc<Mutex<BTreeMap<String, Child>>>,
    log: Arc<Mutex<Vec<String>>>,
}

pub struct KubeletSpec {
    /// The node's `--rootfs`.
    pub root: PathBuf,
    /// The Node's name.
    pub node: String,
    /// The node's address: what its processes listen on (every "host" shares one loopback).
    pub ip: String,
    /// healthz port.
    pub healthz_port: u16,
    /// The static Pods run as processes, by component.
    pub binaries: BTreeMap<String, PathBuf>,
    /// `status.nodeInfo.kubeletVersion` of the Node it registers.
    pub version: String,
    /// Register the Node with condition Ready=True (as a healthy kubelet reports it). Off for
    /// tests that re-join a node of the same name after this kubelet stopped, which a Ready
    /// Node of that name would refuse (nothing here turns it NotReady when the kubelet stops).
    pub node_ready: bool,
    /// Called on every (re)start of a static Pod.
    pub on_start: Option<StartHook>,
    /// The first start of these components waits this long after their manifest appears, as a
    /// kubelet that has just started takes its time to run a new static Pod: a join that needs
    /// its etcd member running before the cluster has quorum again shows here.
    pub start_delays: BTreeMap<String, Duration>,
}

/// What a test kubelet has done so far.
#[derive(Default)]
struct KubeletState {
    client: Option<kube::Client>,
    registered: bool,
    /// Manifests whose processes run (or that have none to run), with the hash started.
    started: BTreeMap<String, String>,
    /// Mirror Pods created, by manifest, with their hash.
    mirrored: BTreeMap<String, String>,
    /// The component (Pod name) of each manifest seen.
    components: BTreeMap<String, String>,
    /// When each component's process was last started: a process that exited is started
    /// again (static Pods are `restartPolicy: Always`), at most once a second.
    started_at: BTreeMap<String, Instant>,
    /// When each manifest was first seen (for [`KubeletSpec::start_delays`]).
    first_seen: BTreeMap<String, Instant>,
}

impl TestKubelet {
    /// Starts the kubelet's threads.
    pub fn start(spec: KubeletSpec) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let children = Arc::new(Mutex::new(BTreeMap::new()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        // healthz: healthy once the kubelet has its configuration.
        let listener = TcpListener::bind(("127.0.0.1", spec.healthz_port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let spec_root = spec.root.clone();
        let (s, root) = (stop.clone(), spec.root.clone());
        threads.push(std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut c, _)) => {
                        let _ = c.set_nonblocking(false);
                        let mut buf = [0u8; 512];
                        let _ = c.read(&mut buf);
                        let healthy = on_node(&root, "/var/lib/kubelet/config.yaml").is_file();
                        let line = if healthy { "200 OK" } else { "503 Service Unavailable" };
                        let _ = c.write_all(format!("HTTP/1.1 {line}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }));
        let (s, ch, lg) = (stop.clone(), children.clone(), log.clone());
        threads.push(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut state = KubeletState::default();
            while !s.load(Ordering::Relaxed) {
                let step = rt.block_on(tick(&spec, &mut state, &ch));
                if let Err(e) = step {
                    let mut l = lg.lock().unwrap();
                    if l.last() != Some(&e) {
                        l.push(e);
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }));
        TestKubelet {
            root: spec_root,
            stop,
            threads,
            children,
            log,
        }
    }

    /// What went wrong so far (each distinct error once).
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Polls `f` every 100 ms until it holds; after 60 s the test fails naming `what` and
    /// what this kubelet met so far.
    pub fn wait_for(&self, what: &str, f: &dyn Fn() -> bool) {
        let start = Instant::now();
        while !f() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}; kubelet: {:?}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The stdout of a kubeadm run on this kubelet's node, checked to have succeeded; on
    /// failure, what the kubelet met and its static Pods' logs are shown too.
    pub fn ok(&self, out: &std::process::Output) -> String {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            let logs: String = std::fs::read_dir(&self.root)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
                .map(|e| {
                    let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                    format!("\n{}:\n{text}", e.path().display())
                })
                .collect();
            panic!(
                "{stdout}\n{}\nkubelet: {:?}{logs}",
                String::from_utf8_lossy(&out.stderr),
                self.log()
            );
        }
        stdout
    }
}

impl Drop for TestKubelet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        for c in self.children.lock().unwrap().values_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A client from a kubeconfig's text.
pub async fn client_from(text: &str) -> Result<kube::Client, String> {
    kubeadm_install_provider();
    let kc = Kubeconfig::from_yaml(text).map_err(|e| e.to_string())?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    kube::Client::try_from(cfg).map_err(|e| e.to_string())
}

fn kubeadm_install_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A hash of a manifest, as the kubelet's `kubernetes.io/config.hash`.
pub fn config_hash(bytes: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a kubelet does each sync: TLS bootstrap, Node registration, static Pods (processes and
/// mirror Pods), restarting those whose manifest changed.
async fn tick(
    spec: &KubeletSpec,
    state: &mut KubeletState,
    children: &Mutex<BTreeMap<String, Child>>,
) -> Result<(), String> {
    let root = &spec.root;
    let kubelet_conf = on_node(root, "/etc/kubernetes/kubelet.conf");
    let bootstrap = on_node(root, "/etc/kubernetes/bootstrap-kubelet.conf");
    if !kubelet_conf.exists() && bootstrap.exists() {
        tls_bootstrap(spec, &bootstrap, &kubelet_conf).await?;
    }
    if kubelet_conf.exists() && state.client.is_none() {
        state.client = Some(kubelet_client(spec, &kubelet_conf).await?);
    }
    // A real kubelet runs its static Pods while it cannot register yet (the API server is one
    // of them): a failed registration is reported after the static Pods are seen to.
    let mut unregistered = None;
    if let Some(client) = &state.client
        && !state.registered
    {
        match register_node(client, spec).await {
            Ok(()) => state.registered = true,
            Err(e) => unregistered = Some(e),
        }
    }
    let manifests = on_node(root, "/etc/kubernetes/manifests");
    let mut entries: Vec<_> = std::fs::read_dir(&manifests)
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    // A manifest moved out of the folder: its static Pod stops and its mirror Pod goes, as the
    // kubelet does (how `kubeadm etcd snapshot restore` and the upgrade's etcd restore stop etcd).
    let units = service_units(root);
    let present: Vec<String> = entries
        .iter()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .chain(units.iter().map(|(name, _, _)| name.clone()))
        .collect();
    let gone: Vec<String> = state
        .components
        .keys()
        .filter(|n| !present.contains(n))
        .cloned()
        .collect();
    for name in gone {
        let component = state.components.remove(&name).unwrap_or_default();
        if let Some(mut old) = children.lock().unwrap().remove(&component) {
            let _ = old.kill();
            let _ = old.wait();
        }
        state.started.remove(&name);
        if state.mirrored.remove(&name).is_some()
            && let Some(client) = &state.client
        {
            let api: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
            let _ = api
                .delete(
                    &format!("{component}-{}", spec.node),
                    &DeleteParams::default(),
                )
                .await;
        }
    }
    // A process that exited is started again from its manifest, as the kubelet restarts a
    // crashed container (e.g. etcd that could not open its data until a restore replaced it).
    let exited: Vec<String> = children
        .lock()
        .unwrap()
        .iter_mut()
        .filter_map(|(component, c)| matches!(c.try_wait(), Ok(Some(_))).then(|| component.clone()))
        .collect();
    for component in exited {
        let due = state
            .started_at
            .get(&component)
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        if !due {
            continue;
        }
        children.lock().unwrap().remove(&component);
        let names: Vec<String> = state
            .components
            .iter()
            .filter(|(_, c)| **c == component)
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            state.started.remove(&name);
        }
    }
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".yaml") {
            continue;
        }
        let Ok(bytes) = std::fs::read(e.path()) else {
            continue;
        };
        let hash = config_hash(&bytes);
        if state.started.get(&name) == Some(&hash) && state.mirrored.get(&name) == Some(&hash) {
            continue;
        }
        let pod: Value = serde_saphyr::from_str(&String::from_utf8_lossy(&bytes))
            .map_err(|e| format!("{name}: {e}"))?;
        let component = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let seen = *state
            .first_seen
            .entry(name.clone())
            .or_insert_with(Instant::now);
        if let Some(delay) = spec.start_delays.get(&component)
            && !state.started_at.contains_key(&component)
            && seen.elapsed() < *delay
        {
            continue;
        }
        state.components.insert(name.clone(), component.clone());
        if state.started.get(&name) != Some(&hash) {
            if let Some(mut old) = children.lock().unwrap().remove(&component) {
                let _ = old.kill();
                let _ = old.wait();
            }
            if let Some(hook) = &spec.on_start {
                hook(&component, &pod);
            }
            if let Some(bin) = spec.binaries.get(&component) {
                let child = run_static_pod(bin, spec, &component, &e.path())?;
                children.lock().unwrap().insert(component.clone(), child);
                state.started_at.insert(component.clone(), Instant::now());
            }
            state.started.insert(name.clone(), hash.clone());
        }
        if let (Some(client), true) = (&state.client, state.registered) {
            create_mirror_pod(client, spec, &component, pod, &hash).await?;
            state.mirrored.insert(name, hash);
        }
    }
    // controlPlaneMode: systemd: this kubelet also plays systemd for kubeadm's units, starting
    // a component from its unit and env file and restarting it when either changes.
    for (name, component, bytes) in units {
        let hash = config_hash(&bytes);
        if state.started.get(&name) == Some(&hash) {
            continue;
        }
        state.components.insert(name.clone(), component.clone());
        if let Some(mut old) = children.lock().unwrap().remove(&component) {
            let _ = old.kill();
            let _ = old.wait();
        }
        if let Some(bin) = spec.binaries.get(&component) {
            let (command, env) = kubeadm_testapi::realbins::unit_command(root, &component)
                .map_err(|e| e.to_string())?;
            let child = run_process(bin, spec, &component, command, env)?;
            children.lock().unwrap().insert(component.clone(), child);
            state.started_at.insert(component.clone(), Instant::now());
        }
        state.started.insert(name, hash);
    }
    unregistered.map_or(Ok(()), Err)
}

/// kubeadm's systemd units of this node (controlPlaneMode: systemd) without a static Pod
/// manifest of the same component: (unit file name, component, unit and env file bytes).
fn service_units(root: &Path) -> Vec<(String, String, Vec<u8>)> {
    [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ]
    .iter()
    .filter(|c| !on_node(root, &format!("/etc/kubernetes/manifests/{c}.yaml")).exists())
    .filter_map(|c| {
        let mut bytes =
            std::fs::read(on_node(root, &format!("/etc/systemd/system/{c}.service"))).ok()?;
        if !bytes.starts_with(b"# Written by kubeadm-rs") {
            return None;
        }
        bytes.extend(
            std::fs::read(on_node(root, &format!("/etc/kubernetes/{c}.env"))).unwrap_or_default(),
        );
        Some((format!("{c}.service"), c.to_string(), bytes))
    })
    .collect()
}

/// The mirror Pod of a static Pod, created with the kubelet's own credentials (the
/// NodeRestriction admission plugin allows exactly this).
async fn create_mirror_pod(
    client: &kube::Client,
    spec: &KubeletSpec,
    component: &str,
    pod: Value,
    hash: &str,
) -> Result<(), String> {
    let mut mirror = pod;
    if let Some(o) = mirror.as_object_mut() {
        o.remove("status");
    }
    mirror["metadata"]["name"] = json!(format!("{component}-{}", spec.node));
    mirror["metadata"]["namespace"] = json!("kube-system");
    if !mirror["metadata"]["annotations"].is_object() {
        mirror["metadata"]["annotations"] = json!({});
    }
    mirror["metadata"]["annotations"]["kubernetes.io/config.mirror"] = json!("test-kubelet");
    mirror["metadata"]["annotations"]["kubernetes.io/config.source"] = json!("file");
    mirror["metadata"]["annotations"]["kubernetes.io/config.hash"] = json!(hash);
    mirror["spec"]["nodeName"] = json!(spec.node);
    // A real API server's NodeRestriction admits a mirror Pod only when its owner is the Node,
    // as a real kubelet sets it.
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    if let Ok(node) = nodes.get(&spec.node).await
        && let Some(uid) = node.metadata.uid
    {
        mirror["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "v1", "kind": "Node", "name": spec.node, "uid": uid, "controller": true
        }]);
    }
    let pod: Pod = serde_json::from_value(mirror).map_err(|e| format!("{component}: {e}"))?;
    let api: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let name = format!("{component}-{}", spec.node);
    // A mirror Pod of another version of the manifest is replaced, as the kubelet does.
    if let Ok(Some(old)) = api.get_opt(&name).await {
        let old_hash = old
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("kubernetes.io/config.hash"))
            .cloned();
        if old_hash.as_deref() == Some(hash) {
            return Ok(());
        }
        api.delete(&name, &DeleteParams::default())
            .await
            .map_err(|e| format!("delete the old mirror Pod of {component}: {e}"))?;
    }
    match api.create(&PostParams::default(), &pod).await {
        Ok(_) => Ok(()),
        Err(e) if e.to_string().contains("AlreadyExists") => {
            Err(format!("mirror Pod of {component} still exists"))
        }
        Err(e) => Err(format!("mirror Pod of {component}: {e}")),
    }
}

/// A static Pod's process, from the manifest's command: host paths resolved under the node's
/// root, flags this build does not know left out, and listening only on the node's address
/// (the "hosts" share one loopback).
fn run_static_pod(
    bin: &Path,
    spec: &KubeletSpec,
    component: &str,
    manifest: &Path,
) -> Result<Child, String> {
    let (command, env) =
        kubeadm_testapi::realbins::manifest_command(manifest).map_err(|e| e.to_string())?;
    run_process(bin, spec, component, command, env)
}

/// A component's process from its command line (program first) and environment.
fn run_process(
    bin: &Path,
    spec: &KubeletSpec,
    component: &str,
    command: Vec<String>,
    env: Vec<(String, String)>,
) -> Result<Child, String> {
    let help = Process::new(bin)
        .arg("--help")
        .output()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let help =
        String::from_utf8_lossy(&help.stdout).into_owned() + &String::from_utf8_lossy(&help.stderr);
    let mut flags: Vec<(String, String)> = command
        .iter()
        .skip(1)
        .filter_map(|a| {
            a.strip_prefix("--")?
                .split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let get = |k: &str| {
        flags
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let client_urls = get("advertise-client-urls");
    if component == "kube-apiserver" && get("bind-address").is_empty() {
        flags.push(("bind-address".into(), spec.ip.clone()));
    }
    let mut args = Vec::new();
    for (k, v) in &flags {
        let arg = match k.as_str() {
            "listen-client-urls" => format!("--{k}={client_urls}"),
            "listen-metrics-urls" => continue,
            "bind-address" => format!("--{k}={}", spec.ip),
            _ if !help.contains(&format!("--{k}")) => continue,
            _ => kubeadm_testapi::realbins::rooted_arg(&format!("--{k}={v}"), &spec.root),
        };
        args.push(arg);
    }
    let log = std::fs::File::create(spec.root.join(format!("{component}.log")))
        .map_err(|e| e.to_string())?;
    Process::new(bin)
        .args(&args)
        .envs(env)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| e.to_string())
}

async fn tls_bootstrap(
    spec: &KubeletSpec,
    bootstrap: &Path,
    kubelet_conf: &Path,
) -> Result<(), String> {
    let text = std::fs::read_to_string(bootstrap).map_err(|e| e.to_string())?;
    let client = client_from(&text).await?;
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("system:node:{}", spec.node),
    );
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:nodes");
    let csr_pem = params
        .serialize_request(&key)
        .and_then(|r| r.pem())
        .map_err(|e| e.to_string())?;
    let api: Api<CertificateSigningRequest> = Api::all(client);
    // A fresh name per attempt: a node that re-joins sends a new request for its new key.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let name = format!("node-csr-{}-{nanos:08x}", spec.node);
    let csr = CertificateSigningRequest {
        metadata: kube::api::ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(csr_pem.into_bytes()),
            signer_name: "kubernetes.io/kube-apiserver-client-kubelet".into(),
            // The three usages kubelets send: a v1.22 controller-manager auto-approves a node
            // client CSR only with exactly these; later ones also accept them.
            usages: Some(vec![
                "digital signature".into(),
                "key encipherment".into(),
                "client auth".into(),
            ]),
            ..Default::default()
        },
        status: None,
    };
    if let Err(e) = api.create(&PostParams::default(), &csr).await
        && !e.to_string().contains("AlreadyExists")
    {
        return Err(format!("create CSR: {e}"));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let cert = loop {
        let got = api.get(&name).await.map_err(|e| format!("get CSR: {e}"))?;
        if let Some(c) = got.status.and_then(|s| s.certificate) {
            break c.0;
        }
        if Instant::now() > deadline {
            return Err("the CSR was not signed".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let pki = on_node(&spec.root, "/var/lib/kubelet/pki");
    std::fs::create_dir_all(&pki).map_err(|e| e.to_string())?;
    let mut pem = String::from_utf8(cert).map_err(|e| e.to_string())?;
    pem.push_str(&key.serialize_pem());
    std::fs::write(pki.join("kubelet-client-current.pem"), pem).map_err(|e| e.to_string())?;
    let mut kc: Value = serde_saphyr::from_str(&text).map_err(|e| e.to_string())?;
    let file = "/var/lib/kubelet/pki/kubelet-client-current.pem";
    kc["users"] =
        json!([{"name": "default-auth", "user": {"client-certificate": file, "client-key": file}}]);
    kc["contexts"] = json!([{"name": "default-context", "context": {"cluster": kc["clusters"][0]["name"], "user": "default-auth"}}]);
    kc["current-context"] = json!("default-context");
    // 0600, as the kubelet writes it (clientcmd.WriteToFile): the permission audit of a
    // joined node checks it.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(kubelet_conf)
        .map_err(|e| e.to_string())?;
    f.write_all(
        serde_json::to_string(&kc)
            .map_err(|e| e.to_string())?
            .as_bytes(),
    )
    .map_err(|e| e.to_string())
}

/// A client with the kubelet's own credentials (kubelet.conf's file paths point into the node's
/// root, so the files are embedded).
async fn kubelet_client(spec: &KubeletSpec, kubelet_conf: &Path) -> Result<kube::Client, String> {
    let text = std::fs::read_to_string(kubelet_conf).map_err(|e| e.to_string())?;
    let mut kc: Value = serde_saphyr::from_str(&text).map_err(|e| e.to_string())?;
    for user in kc["users"].as_array_mut().into_iter().flatten() {
        for (file_key, data_key) in [
            ("client-certificate", "client-certificate-data"),
            ("client-key", "client-key-data"),
        ] {
            if let Some(f) = user["user"][file_key].as_str().map(str::to_string) {
                let bytes = std::fs::read(on_node(&spec.root, &f)).map_err(|e| e.to_string())?;
                user["user"][data_key] = json!(base64_encode(&bytes));
                user["user"].as_object_mut().map(|o| o.remove(file_key));
            }
        }
    }
    client_from(&serde_json::to_string(&kc).map_err(|e| e.to_string())?).await
}

/// Registers the Node as its kubelet does.
async fn register_node(client: &kube::Client, spec: &KubeletSpec) -> Result<(), String> {
    let api: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": spec.node, "labels": {"kubernetes.io/hostname": spec.node}},
        "status": {
            "conditions": [{"type": "Ready", "status": if spec.node_ready { "True" } else { "Unknown" }, "reason": "KubeletReady"}],
            "nodeInfo": {"kubeletVersion": spec.version, "architecture": "amd64", "bootID": "", "containerRuntimeVersion": "", "kernelVersion": "", "kubeProxyVersion": "", "machineID": "", "operatingSystem": "linux", "osImage": "", "systemUUID": ""},
        },
    }))
    .map_err(|e| e.to_string())?;
    match api.create(&PostParams::default(), &node).await {
        Ok(_) => Ok(()),
        Err(e) if e.to_string().contains("AlreadyExists") => Ok(()),
        Err(e) => Err(format!("register Node: {e}")),
    }
}

/// Where the node's absolute `path` is on this machine: resolved under the node's root as a
/// chroot would, as kubeadm resolves it, so links inside a root lead this kubelet where they
/// lead kubeadm.
pub fn on_node(root: &Path, path: &str) -> PathBuf {
    kubeadm_effects::resolve(root, Path::new(path))
        .unwrap_or_else(|_| root.join(path.trim_start_matches('/')))
}

/// Standard base64.
pub fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A free TCP port on `ip`.
pub fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The etcd binary for the tests (`KUBEADM_TEST_ETCD`, else on PATH); `None` prints why the
/// test skips, and fails under `CI`.
pub fn etcd_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("KUBEADM_TEST_ETCD")
        && Path::new(&p).is_file()
    {
        return Some(PathBuf::from(p));
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("etcd"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "etcd not found (KUBEADM_TEST_ETCD or PATH); CI must run this test"
        );
        eprintln!("skipping this end-to-end test: etcd not found (set KUBEADM_TEST_ETCD)");
    }
    found
}

/// Runs the kubeadm binary under `--rootfs root` (3 minutes at most).
pub fn kubeadm(root: &Path, args: &[&str]) -> std::process::Output {
    assert_cmd::Command::cargo_bin("kubeadm")
        .unwrap()
        .arg("--rootfs")
        .arg(root)
        .args(args)
        .timeout(Duration::from_secs(180))
        .output()
        .unwrap()
}
