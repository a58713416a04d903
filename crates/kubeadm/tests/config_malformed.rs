//! The malformed-config corpus (`tests/data/malformed/*.yaml`): every file must be refused by
//! `config validate` and by `init --dry-run`, with an error naming the field and the problem
//! (each file's first line, `# expect: a|b`, lists text the error must contain), exit non-zero,
//! and leave the `--rootfs` untouched.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/malformed");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn expectations(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let first = text.lines().next().unwrap();
    let list = first
        .strip_prefix("# expect: ")
        .unwrap_or_else(|| panic!("{} lacks an expect line", file.display()));
    list.split('|').map(str::to_string).collect()
}

#[test]
fn corpus_is_large_enough() {
    assert!(
        corpus().len() >= 30,
        "the corpus must hold at least 30 malformed configs"
    );
}

#[test]
fn every_malformed_config_is_refused_with_a_precise_error() {
    for file in corpus() {
        let expect = expectations(&file);
        let out = Command::cargo_bin("kubeadm")
            .unwrap()
            .args(["config", "validate", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{}: validate accepted it",
            file.display()
        );
        for e in &expect {
            assert!(
                stderr.contains(e.as_str()),
                "{}: error {stderr:?} lacks {e:?}",
                file.display()
            );
        }
        assert!(
            stderr.starts_with("error: "),
            "{}: {stderr}",
            file.display()
        );

        let root = tempfile::tempdir().unwrap();
        let out = Command::cargo_bin("kubeadm")
            .unwrap()
            .args(["init", "--dry-run", "--rootfs"])
            .arg(root.path())
            .arg("--config")
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{}: init accepted it",
            file.display()
        );
        for e in &expect {
            assert!(
                stderr.contains(e.as_str()),
                "{}: init error {stderr:?} lacks {e:?}",
                file.display()
            );
        }
        assert_eq!(
            std::fs::read_dir(root.path()).unwrap().count(),
            0,
            "{}: something was written",
            file.display()
        );
    }
}
