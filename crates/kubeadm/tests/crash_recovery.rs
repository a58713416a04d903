//! Crash recovery: `kubeadm init` killed with SIGKILL at every phase boundary (the debug
//! binary's `KUBEADM_TEST_KILL_AT=init/<phase>` kills it right before that phase, that is
//! right after the one before it completed), then `kubeadm init` again must converge to what a
//! clean init leaves: the same files with the same modes under the root and the same objects
//! in the cluster. The same for `kubeadm reset`: killed at each boundary, `reset -f` again
//! leaves what a clean reset leaves, and `init` then succeeds; and `reset` killed inside
//! cleanup-node before each of its removals, then `reset -f` again. Each case has its own root and
//! its own test API server; the cluster CA is the operator's (copied into every root), so
//! every server trusts what every init signs. The permission audit runs on the clean init.
//! (Join's kill -9 cases are in `join_e2e.rs`.)

mod common;
#[path = "support/file_modes.rs"]
mod file_modes;
#[path = "support/init_world.rs"]
mod init_world;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use init_world::{World, text};
use kubeadm_testapi::TestApiServer;
use kubeadm_testapi::support::{kubeadm, kubeadm_cmd};

/// One case: a root, its server and its configuration file.
struct Case {
    dir: tempfile::TempDir,
    server: TestApiServer,
    config: PathBuf,
}

impl Case {
    fn new(world: &World) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("root")).unwrap();
        let server = world.server();
        let config = world.config(dir.path(), &server);
        world.prepare(&dir.path().join("root"));
        Case {
            dir,
            server,
            config,
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn init(&self, kill_at: Option<&str>) -> Output {
        let mut c = kubeadm_cmd(&self.root());
        c.args(["init", "--config"]).arg(&self.config).args([
            "--ignore-preflight-errors",
            "all",
            "--upload-certs",
        ]);
        if let Some(k) = kill_at {
            c.env("KUBEADM_TEST_KILL_AT", k);
        }
        c.timeout(kubeadm_testapi::support::KUBEADM_TIMEOUT)
            .output()
            .unwrap()
    }

    fn reset(&self, kill_at: Option<&str>) -> Output {
        let mut c = kubeadm_cmd(&self.root());
        c.args(["reset", "-f"]);
        if let Some(k) = kill_at {
            c.env("KUBEADM_TEST_KILL_AT", k);
        }
        c.timeout(kubeadm_testapi::support::KUBEADM_TIMEOUT)
            .output()
            .unwrap()
    }

    /// The objects of the cluster by identity, with what does not depend on keys or ports:
    /// data keys of ConfigMaps and Secrets, labels and taints of the node.
    fn objects(&self) -> Vec<String> {
        self.server.reconcile();
        let mut out = Vec::new();
        let mut objects = common::init_objects(33);
        objects.push(("", "secrets", "kube-system", "kubeadm-certs".into()));
        objects.push((
            "rbac.authorization.k8s.io",
            "roles",
            "kube-system",
            "kubeadm:kubeadm-certs".into(),
        ));
        for (g, r, ns, n) in &objects {
            let (g, r, ns, n) = (*g, *r, *ns, n.as_str());
            let line = match self.server.get(g, r, ns, n) {
                None => "missing".to_string(),
                Some(o) => {
                    let keys: Vec<&String> = o["data"]
                        .as_object()
                        .map(|d| d.keys().collect())
                        .unwrap_or_default();
                    format!("data keys {keys:?}")
                }
            };
            out.push(format!("{r} {ns}/{n}: {line}"));
        }
        let node = self.server.get("", "nodes", "", "cp-1").unwrap();
        out.push(format!(
            "node labels {} taints {}",
            node["metadata"]["labels"], node["spec"]["taints"]
        ));
        out
    }
}

/// Every path under `root` with its kind and mode: what must be the same after recovery.
fn shape(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let kind = if m.is_dir() {
                stack.push(p.clone());
                "dir"
            } else {
                "file"
            };
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            out.insert(
                rel,
                format!("{kind} {:04o}", m.permissions().mode() & 0o7777),
            );
        }
    }
    out
}

/// The phase paths of a command from its `--help` list (`certs/ca`, `control-plane/all` is not
/// listed, groups are).
fn phases(command: &str) -> Vec<String> {
    let out = assert_cmd::Command::new(kubeadm_testapi::support::kubeadm_bin())
        .args([command, "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let block = help
        .split("```")
        .nth(1)
        .unwrap_or_else(|| panic!("no phase list in {command} --help:\n{help}"));
    let lines: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
    // Descriptions start in one column; a wrapped description's next line has no label there.
    let first = lines[0];
    let label_len = first.split_whitespace().next().unwrap().len();
    let col = label_len + first[label_len..].len() - first[label_len..].trim_start().len();
    let mut stack: Vec<String> = Vec::new();
    let mut paths = Vec::new();
    for line in lines {
        let Some(label) = line.get(..col).map(str::trim) else {
            continue;
        };
        if label.is_empty() || label.contains(' ') || !line[col - 1..].starts_with(' ') {
            continue;
        }
        let depth = (line.len() - line.trim_start().len()) / 2;
        let name = label.trim_start_matches('/').to_string();
        stack.truncate(depth);
        stack.push(name);
        paths.push(stack.join("/"));
    }
    paths
}

/// What reset's cleanup-node removes, in order, from its `Deleting contents of directories: [..]`
/// and `Deleting files: [..]` lines.
fn cleanup_removals(stdout: &str) -> Vec<String> {
    let mut out = Vec::new();
    for prefix in [
        "[reset] Deleting contents of directories: [",
        "[reset] Deleting files: [",
    ] {
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in:\n{stdout}"));
        out.extend(
            line.trim_end_matches(']')
                .split(", ")
                .map(|p| p.trim_matches('"').to_string()),
        );
    }
    out
}

/// The kubeconfig of a root works against its server: its client certificate is signed by the
/// CA the server trusts and matches its key.
fn admin_works(case: &Case) {
    let out = kubeadm(&case.root(), &["token", "list"]);
    assert!(out.status.success(), "admin.conf: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("abcdef"),
        "{}",
        text(&out)
    );
}

#[test]
fn init_and_reset_killed_at_every_phase_boundary_recover() {
    let world = World::new();

    // The picture of a clean init, and the permission audit of what it wrote.
    let clean = Case::new(&world);
    let out = clean.init(None);
    assert!(out.status.success(), "clean init: {}", text(&out));
    let want_files = shape(&clean.root());
    let want_objects = clean.objects();
    let (checked, problems) = file_modes::audit(
        &clean.root(),
        // The kubelet's own certificate (played by the test) is not kubeadm's.
        &["var/lib/kubelet/pki"],
    );
    assert!(
        problems.is_empty(),
        "permission audit:\n{}",
        problems.join("\n")
    );
    assert!(checked > 30, "only {checked} entries audited");

    // init killed before each phase, then init again.
    let mut matrix: Vec<String> = Vec::new();
    let mut boundaries = 0;
    let init_phases = phases("init");
    for phase in &init_phases {
        let case = Case::new(&world);
        let kill = format!("init/{phase}");
        let out = case.init(Some(&kill));
        if out.status.success() {
            // Only a group without work of its own has no boundary before it.
            assert!(
                init_phases
                    .iter()
                    .any(|p| p.starts_with(&format!("{phase}/"))),
                "{kill} was never reached: {}",
                text(&out)
            );
            continue;
        }
        assert_eq!(
            out.status.signal(),
            Some(9),
            "{kill}: not killed but failed: {}",
            text(&out)
        );
        boundaries += 1;
        let again = case.init(None);
        assert!(
            again.status.success(),
            "init after a kill before {phase} failed: {}",
            text(&again)
        );
        assert_eq!(
            shape(&case.root()),
            want_files,
            "files after a kill before {phase} and a second init"
        );
        assert_eq!(
            case.objects(),
            want_objects,
            "objects after a kill before {phase} and a second init"
        );
        admin_works(&case);
        matrix.push(format!("init killed before {phase}: init again converged"));
    }
    assert!(
        boundaries >= 30,
        "only {boundaries} init boundaries:\n{matrix:?}"
    );

    // reset killed before each phase, then reset again; then init succeeds.
    let reset_clean = &clean;
    let out = reset_clean.reset(None);
    assert!(out.status.success(), "clean reset: {}", text(&out));
    let want_after_reset = shape(&reset_clean.root());
    let mut reset_boundaries = 0;
    for phase in phases("reset") {
        let case = Case::new(&world);
        let out = case.init(None);
        assert!(out.status.success(), "{}", text(&out));
        let kill = format!("reset/{phase}");
        let out = case.reset(Some(&kill));
        if out.status.success() {
            continue;
        }
        assert_eq!(out.status.signal(), Some(9), "{kill}: {}", text(&out));
        reset_boundaries += 1;
        let again = case.reset(None);
        assert!(
            again.status.success(),
            "reset after {kill}: {}",
            text(&again)
        );
        assert_eq!(
            shape(&case.root()),
            want_after_reset,
            "files after a reset killed before {phase} and a second reset"
        );
        world.prepare(&case.root());
        let init = case.init(None);
        assert!(
            init.status.success(),
            "init after {kill} and reset: {}",
            text(&init)
        );
        assert_eq!(shape(&case.root()), want_files);
        matrix.push(format!(
            "reset killed before {phase}: reset again completed, init succeeded"
        ));
    }
    assert_eq!(reset_boundaries, 3, "{matrix:?}");

    // reset killed inside cleanup-node, right before each of its removals (every directory it
    // empties and every file it deletes, as the clean reset listed them), then reset again.
    let removals = cleanup_removals(&String::from_utf8_lossy(&out.stdout));
    assert!(removals.len() >= 10, "{removals:?}");
    let mut cleanup_points = 0;
    for removal in &removals {
        let case = Case::new(&world);
        let out = case.init(None);
        assert!(out.status.success(), "{}", text(&out));
        let kill = format!("reset/cleanup-node:{removal}");
        let out = case.reset(Some(&kill));
        assert_eq!(out.status.signal(), Some(9), "{kill}: {}", text(&out));
        cleanup_points += 1;
        let again = case.reset(None);
        assert!(
            again.status.success(),
            "reset after {kill}: {}",
            text(&again)
        );
        assert_eq!(
            shape(&case.root()),
            want_after_reset,
            "files after a reset killed before removing {removal} and a second reset"
        );
        matrix.push(format!(
            "reset killed before removing {removal}: reset again completed"
        ));
    }
    eprintln!(
        "crash-recovery matrix: {boundaries} init boundaries, {reset_boundaries} reset boundaries, {cleanup_points} points inside reset's cleanup-node\n{}",
        matrix.join("\n")
    );
}
