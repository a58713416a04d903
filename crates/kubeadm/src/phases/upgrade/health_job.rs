//! The `CreateJob` health check of `upgrade apply`'s preflight, as upstream kubeadm of the
//! target minor runs it: a Job that runs the pause image once, which only completes when the
//! cluster can schedule and run a workload (scheduler, controller-manager, a kubelet).
//!
//! From 1.30 (upstream's `health.go` after kubernetes#122079 and #124503): skipped with a
//! warning when no Node has `spec.unschedulable=false`; the Job has `generateName:
//! upgrade-health-check-`, `ttlSecondsAfterFinished` (timeout + 5 s) and
//! `activeDeadlineSeconds` (the timeout), and is left to the TTL controller. Before 1.30: the
//! fixed name `upgrade-health-check`, an existing one deleted first, and deleted again at the
//! end (foreground propagation). The timeout is 15 s, one minute from 1.36 (#136273).

use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams, PropagationPolicy};
use kubeadm_api::KubeVersion;
use serde_json::json;

use crate::error::{Error, Result};

/// The check's name for `--ignore-preflight-errors`.
pub const CHECK: &str = "CreateJob";
const PREFIX: &str = "upgrade-health-check";
const NS: &str = "kube-system";

/// What upstream kubeadm of a minor does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flavour {
    /// How long each step (list, create, wait) may take.
    pub timeout: Duration,
    /// 1.30+: `generateName`, TTL and deadline, no deletion; skipped without a schedulable Node.
    pub generated: bool,
    /// Before 1.25 the Job tolerates the `master` taint too.
    pub tolerates_master: bool,
}

impl Flavour {
    /// Upstream's behaviour when upgrading to `target`.
    pub fn of(target: &KubeVersion) -> Self {
        let minor = target.minor;
        Flavour {
            timeout: Duration::from_secs(if minor >= 36 { 60 } else { 15 }),
            generated: minor >= 30,
            // The constant went with the taint (kubernetes/kubernetes#110095).
            tolerates_master: minor < 25,
        }
    }

    /// The Job to create.
    pub fn job(&self, pause_image: &str) -> Result<Job> {
        let secs = self.timeout.as_secs();
        let mut tolerations = Vec::new();
        if self.tolerates_master {
            tolerations
                .push(json!({"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}));
        }
        tolerations
            .push(json!({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}));
        let mut v = json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"namespace": NS},
            "spec": {
                "backoffLimit": 0,
                "template": {"spec": {
                    "restartPolicy": "Never",
                    "securityContext": {"runAsUser": 999, "runAsGroup": 999, "runAsNonRoot": true},
                    "tolerations": tolerations,
                    "containers": [{"name": PREFIX, "image": pause_image, "args": ["-v"]}],
                }},
            },
        });
        if self.generated {
            v["metadata"]["generateName"] = json!(format!("{PREFIX}-"));
            v["spec"]["ttlSecondsAfterFinished"] = json!(secs + 5);
            v["spec"]["activeDeadlineSeconds"] = json!(secs);
        } else {
            v["metadata"]["name"] = json!(PREFIX);
        }
        serde_json::from_value(v).map_err(|e| Error::msg(format!("the health-check Job: {e}")))
    }
}

/// Runs the check; `Err` is the problem as the preflight report shows it (upstream's text).
pub async fn run(client: Client, flavour: Flavour, pause_image: String) -> Result<(), String> {
    let timeout = flavour.timeout;
    let human = format!("{}s", timeout.as_secs());
    if flavour.generated {
        let nodes: Api<Node> = Api::all(client.clone());
        let lp = ListParams::default()
            .fields("spec.unschedulable=false")
            .limit(1);
        let list = poll(timeout, || nodes.list(&lp)).await.map_err(|e| {
            format!(
                "could not check if there is at least one Node that can schedule a test Pod: {e}"
            )
        })?;
        if list.items.is_empty() {
            eprintln!(
                "[upgrade/health] WARNING: The preflight check \"{CHECK}\" was skipped because there are no schedulable Nodes in the cluster."
            );
            return Ok(());
        }
    }
    let jobs: Api<Job> = Api::namespaced(client, NS);
    let job = flavour.job(&pause_image).map_err(|e| e.to_string())?;
    let delete = || async {
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
            ..Default::default()
        };
        match jobs.delete(PREFIX, &dp).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(format!(
                "could not delete Job {PREFIX:?} in the namespace {NS:?}: {e}"
            )),
        }
    };
    if !flavour.generated && matches!(jobs.get_opt(PREFIX).await, Ok(Some(_))) {
        delete().await?;
    }
    let pp = PostParams::default();
    let created = poll(timeout, || jobs.create(&pp, &job))
        .await
        .map_err(|e| {
            format!(
                "could not create a Job with the prefix {PREFIX:?} in the namespace {NS:?}: {e}"
            )
        })?;
    let name = created.metadata.name.unwrap_or_else(|| PREFIX.to_string());
    let waiting = Instant::now();
    let waited = wait_complete(&jobs, &name, timeout).await;
    crate::waiter::record_wait(waiting.elapsed());
    let outcome = waited.map_err(|last| {
        format!("Job {name:?} in the namespace {NS:?} did not complete in {human}: {last}")
    });
    if !flavour.generated {
        delete().await?;
        // Upstream before 1.30 returned the deletion's result here, so a Job that did not
        // complete passed (kubernetes/kubeadm#3050): the upgrade proceeds as it did, but says so.
        if let Err(e) = &outcome {
            eprintln!(
                "[upgrade/health] WARNING: {e}; kubeadm before 1.30 lets the upgrade proceed"
            );
            return Ok(());
        }
    }
    outcome
}

/// `op` every second until it succeeds or `timeout` passes (then its last error).
async fn poll<T, F, Fut>(timeout: Duration, mut op: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, kube::Error>>,
{
    let outcome = std::cell::RefCell::new(None);
    let attempt = || {
        let fut = op();
        let outcome = &outcome;
        async move {
            let r = fut.await;
            let done = r.is_ok();
            *outcome.borrow_mut() = Some(r);
            done
        }
    };
    let schedule = kubeadm_effects::poll::Schedule::every(Duration::from_secs(1));
    kubeadm_effects::poll::poll_until_async(timeout, schedule, attempt, tokio::time::sleep).await;
    match outcome.into_inner() {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(crate::apiclient::describe_error(&e)),
        None => Err("no attempt was made".into()),
    }
}

/// Polls the Job every second (the first time at once) for its `Complete` condition.
async fn wait_complete(jobs: &Api<Job>, name: &str, timeout: Duration) -> Result<(), String> {
    let last = std::cell::RefCell::new(String::new());
    let complete = || {
        let last = &last;
        async move {
            match jobs.get(name).await {
                Ok(j) => {
                    let done = j
                        .status
                        .and_then(|s| s.conditions)
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == "Complete");
                    if !done {
                        *last.borrow_mut() = "no condition of type Complete".to_string();
                    }
                    done
                }
                Err(e) => {
                    *last.borrow_mut() = crate::apiclient::describe_error(&e);
                    false
                }
            }
        }
    };
    let schedule = kubeadm_effects::poll::Schedule::every(Duration::from_secs(1));
    match kubeadm_effects::poll::poll_until_async(timeout, schedule, complete, tokio::time::sleep)
        .await
    {
        Some(_) => Ok(()),
        None => Err(last.into_inner()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_per_minor() {
        let v = |s: &str| KubeVersion::parse(s).unwrap();
        let new = Flavour::of(&v("v1.31.0"));
        assert_eq!(new.timeout, Duration::from_secs(15));
        let j = serde_json::to_value(new.job("registry.k8s.io/pause:3.10").unwrap()).unwrap();
        assert_eq!(j["metadata"]["generateName"], "upgrade-health-check-");
        assert_eq!(j["spec"]["ttlSecondsAfterFinished"], 20);
        assert_eq!(j["spec"]["activeDeadlineSeconds"], 15);
        assert_eq!(j["spec"]["backoffLimit"], 0);
        let pod = &j["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(pod["securityContext"]["runAsUser"], 999);
        assert_eq!(pod["containers"][0]["args"][0], "-v");
        assert_eq!(pod["tolerations"].as_array().unwrap().len(), 1);
        let old = Flavour::of(&v("v1.24.17"));
        let j = serde_json::to_value(old.job("p").unwrap()).unwrap();
        assert_eq!(j["metadata"]["name"], "upgrade-health-check");
        assert!(j["spec"]["ttlSecondsAfterFinished"].is_null());
        assert_eq!(
            j["spec"]["template"]["spec"]["tolerations"][0]["key"],
            "node-role.kubernetes.io/master"
        );
        assert_eq!(Flavour::of(&v("v1.36.0")).timeout, Duration::from_secs(60));
    }
}
