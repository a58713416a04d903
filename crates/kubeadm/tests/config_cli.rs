//! `config print|validate|migrate|images`, `version`, `completion`, `token generate`,
//! `certs certificate-key`, and the flag rules of `init`.

use std::path::Path;

use assert_cmd::Command;

fn kubeadm() -> Command {
    Command::cargo_bin("kubeadm").unwrap()
}

fn stdout(args: &[&str]) -> String {
    let out = kubeadm().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn printed_defaults_are_pinned_and_validate() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, extra) in [
        ("init-defaults", vec![]),
        ("join-defaults", vec![]),
        ("reset-defaults", vec![]),
        ("upgrade-defaults", vec![]),
        (
            "init-defaults",
            vec![
                "--component-configs",
                "KubeletConfiguration,KubeProxyConfiguration",
            ],
        ),
    ] {
        let mut args = vec!["config", "print", kind];
        args.extend(extra.iter().copied());
        let text = stdout(&args);
        let name = format!(
            "{kind}{}",
            if extra.is_empty() {
                ""
            } else {
                "-component-configs"
            }
        );
        insta::assert_snapshot!(name.clone(), text);
        let file = write(dir.path(), &format!("{name}.yaml"), &text);
        let out = kubeadm()
            .args(["config", "validate", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    }
}

#[test]
fn unknown_component_config_is_refused() {
    let out = kubeadm()
        .args([
            "config",
            "print",
            "init-defaults",
            "--component-configs",
            "Nope",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--component-configs"));
}

const V1BETA3: &str = "apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
nodeRegistration:
  name: cp-1
  kubeletExtraArgs:
    max-pods: \"50\"
localAPIEndpoint:
  advertiseAddress: 10.0.0.5
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
kubernetesVersion: v1.30.4
apiServer:
  timeoutForControlPlane: 6m0s
  extraArgs:
    audit-log-maxage: \"30\"
networking:
  podSubnet: 10.244.0.0/16
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
maxPods: 50
";

#[test]
fn migrate_converts_v1beta3_to_a_valid_v1beta4_file() {
    let dir = tempfile::tempdir().unwrap();
    let old = write(dir.path(), "old.yaml", V1BETA3);
    let new = dir.path().join("new.yaml");
    kubeadm()
        .args(["config", "migrate", "--old-config"])
        .arg(&old)
        .arg("--new-config")
        .arg(&new)
        .assert()
        .success();
    let text = std::fs::read_to_string(&new).unwrap();
    assert!(!text.contains("v1beta3"), "{text}");
    assert!(
        text.contains("- name: audit-log-maxage\n    value: \"30\""),
        "extraArgs map became a list: {text}"
    );
    assert!(
        text.contains("- name: max-pods\n    value: \"50\""),
        "{text}"
    );
    assert!(
        text.contains("controlPlaneComponentHealthCheck: 6m0s"),
        "timeoutForControlPlane moved to timeouts: {text}"
    );
    assert!(
        text.contains("maxPods: 50"),
        "component config carried: {text}"
    );
    assert!(text.contains("podSubnet: 10.244.0.0/16"));
    kubeadm()
        .args(["config", "validate", "--config"])
        .arg(&new)
        .assert()
        .success();
}

#[test]
fn migrate_requires_old_config() {
    let out = kubeadm().args(["config", "migrate"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--old-config"));
}

#[test]
fn config_cannot_be_mixed_with_most_flags() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("root")).unwrap();
    let cfg = write(
        dir.path(),
        "c.yaml",
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAddress: 127.0.0.1\n",
    );
    let out = kubeadm()
        .args(["init", "--dry-run", "--rootfs"])
        .arg(dir.path().join("root"))
        .arg("--config")
        .arg(&cfg)
        .args([
            "--pod-network-cidr",
            "10.244.0.0/16",
            "--service-dns-domain",
            "x.local",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "can not mix '--config' with arguments [\"pod-network-cidr\", \"service-dns-domain\"]"
        ),
        "{err}"
    );
    // Allowed ones mix fine.
    let out = kubeadm()
        .args(["init", "--dry-run", "--rootfs"])
        .arg(dir.path().join("root"))
        .arg("--config")
        .arg(&cfg)
        .args([
            "--skip-phases",
            "addon",
            "--ignore-preflight-errors",
            "all",
            "--node-name",
            "cp-1",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("can not mix"), "{err}");
}

#[test]
fn init_dry_run_on_defaults_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let out = kubeadm()
        .args([
            "init",
            "--dry-run",
            "--apiserver-advertise-address",
            "127.0.0.1",
            "--node-name",
            "cp-1",
            "--rootfs",
        ])
        .arg(root.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("[init] Using Kubernetes version: v1."),
        "{text}"
    );
    assert!(text.contains("Finished dry-running"), "{text}");
    assert_eq!(
        std::fs::read_dir(root.path()).unwrap().count(),
        0,
        "the rootfs stays empty"
    );
}

#[test]
fn bad_flags_are_named() {
    for (args, expect) in [
        (vec!["--token", "nope"], "--token"),
        (vec!["--token-ttl", "1day"], "--token-ttl"),
        (vec!["--feature-gates", "A"], "--feature-gates"),
        (
            vec!["--kubernetes-version", "v1.99.0"],
            "v1.22 through v1.37",
        ),
        (vec!["--service-cidr", "10.96.0.0/40"], "serviceSubnet"),
        (
            vec!["--skip-phases", "nonsense"],
            "invalid phase name: nonsense",
        ),
    ] {
        let root = tempfile::tempdir().unwrap();
        let out = kubeadm()
            .args([
                "init",
                "--dry-run",
                "--apiserver-advertise-address",
                "127.0.0.1",
                "--node-name",
                "n",
                "--rootfs",
            ])
            .arg(root.path())
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    }
}

#[test]
fn version_formats() {
    let short = stdout(&["version", "-o", "short"]);
    assert!(
        short.trim().starts_with("v1.") && short.trim().split('.').count() == 3,
        "{short}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&["version", "-o", "json"])).unwrap();
    assert_eq!(
        json["clientVersion"]["gitVersion"].as_str().unwrap(),
        short.trim()
    );
    let yaml = stdout(&["version", "-o", "yaml"]);
    assert!(
        yaml.contains("clientVersion:") && yaml.contains("gitVersion: v1."),
        "{yaml}"
    );
    assert!(stdout(&["version"]).starts_with("kubeadm version: &version.Info{Major:\"1\""));
}

#[test]
fn completion_scripts() {
    for shell in ["bash", "zsh", "fish"] {
        let s = stdout(&["completion", shell]);
        assert!(s.contains("kubeadm") && s.contains("init"), "{shell}");
    }
}

#[test]
fn generated_secrets_have_the_right_shape() {
    let t = stdout(&["token", "generate"]);
    let t = t.trim();
    let (id, secret) = t.split_once('.').unwrap();
    assert!(
        id.len() == 6
            && secret.len() == 16
            && t.bytes()
                .all(|b| b == b'.' || b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{t}"
    );
    assert_ne!(t, stdout(&["token", "generate"]).trim());
    let k = stdout(&["certs", "certificate-key"]);
    assert!(
        k.trim().len() == 64 && k.trim().bytes().all(|b| b.is_ascii_hexdigit()),
        "{k}"
    );
}

#[test]
fn init_help_lists_phases() {
    let help = stdout(&["init", "--help"]);
    assert!(
        help.contains("The \"init\" command executes the following phases:"),
        "{help}"
    );
}
