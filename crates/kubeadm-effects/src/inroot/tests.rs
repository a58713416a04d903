//! Every symlink case of issue 13, for both resolvers: nothing outside the root is read,
//! written, listed or removed, and the dry run sees what the real run acts on.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use super::Resolver;
use crate::real::RealEffects;
use crate::{Content, DryRunEffects, Effects};

const RESOLVERS: [Resolver; 2] = [Resolver::Kernel, Resolver::Walk];

/// A root and a victim directory outside it holding `etc/kubernetes/manifests/keep.yaml`.
struct Scene {
    root: tempfile::TempDir,
    victim: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        let victim = tempfile::tempdir().unwrap();
        let m = victim.path().join("etc/kubernetes/manifests");
        fs::create_dir_all(&m).unwrap();
        fs::write(m.join("keep.yaml"), b"x").unwrap();
        fs::write(victim.path().join("secret"), b"outside").unwrap();
        Scene {
            root: tempfile::tempdir().unwrap(),
            victim,
        }
    }

    fn r(&self) -> &Path {
        self.root.path()
    }

    fn v(&self) -> &Path {
        self.victim.path()
    }

    /// The root path of the victim as a host path inside the root.
    fn v_in_root(&self) -> std::path::PathBuf {
        self.r().join(self.v().strip_prefix("/").unwrap())
    }

    fn victim_intact(&self) {
        assert_eq!(
            fs::read(self.v().join("etc/kubernetes/manifests/keep.yaml")).unwrap(),
            b"x"
        );
        assert_eq!(fs::read(self.v().join("secret")).unwrap(), b"outside");
        let names: Vec<_> = fs::read_dir(self.v().join("etc/kubernetes"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["manifests"], "nothing new in the victim");
    }

    fn fx(&self, resolver: Resolver) -> RealEffects {
        RealEffects::with_resolver(self.r(), resolver)
    }
}

/// How many `..` lead from `dir` to `/`, and one more.
fn ups(dir: &Path) -> String {
    "../".repeat(dir.components().count() + 1)
}

#[test]
fn absolute_link_along_the_path_is_followed_inside_the_root() {
    for res in RESOLVERS {
        let s = Scene::new();
        // `ln -s $V/etc $R/etc`
        symlink(s.v().join("etc"), s.r().join("etc")).unwrap();
        let fx = s.fx(res);
        let ca = Path::new("/etc/kubernetes/pki/ca.crt");
        // Inside the root the link dangles: a chroot's `mkdir -p` fails there, so do we.
        let e = fx
            .write_file(ca, Content::Plain(b"ca".to_vec()), 0o644)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/etc is a symbolic link"), "{res:?}: {e}");
        // The dry run fails the same way.
        let dry = DryRunEffects::new(s.r(), Box::new(std::io::sink()))
            .write_file(ca, Content::Plain(b"ca".to_vec()), 0o644)
            .unwrap_err()
            .to_string();
        assert_eq!(dry, e);
        s.victim_intact();
        fs::create_dir_all(s.v_in_root().join("etc")).unwrap();
        fx.write_file(ca, Content::Plain(b"ca".to_vec()), 0o644)
            .unwrap();
        let problems = fx
            .remove_dir_contents(Path::new("/etc/kubernetes/manifests"))
            .unwrap();
        assert!(problems.is_empty(), "{res:?}: {problems:?}");
        assert_eq!(
            fx.list_dir(Path::new("/etc/kubernetes")).unwrap(),
            vec!["pki"],
            "{res:?}"
        );
        s.victim_intact();
        // Where a chroot would have put it: the link's target, inside the root.
        assert_eq!(
            fs::read(s.v_in_root().join("etc/kubernetes/pki/ca.crt")).unwrap(),
            b"ca",
            "{res:?}"
        );
        assert_eq!(fx.read(ca).unwrap().unwrap(), b"ca");
    }
}

#[test]
fn the_root_itself_linked_out_is_contained() {
    for res in RESOLVERS {
        let s = Scene::new();
        // `ln -s $V $R/etc`: the CA would land in $V/kubernetes/pki.
        symlink(s.v(), s.r().join("etc")).unwrap();
        let fx = s.fx(res);
        let key = Path::new("/etc/kubernetes/pki/ca.key");
        assert!(
            fx.write_file(key, Content::Plain(b"key".to_vec()), 0o600)
                .is_err()
        );
        fs::create_dir_all(s.v_in_root()).unwrap();
        fx.write_file(key, Content::Plain(b"key".to_vec()), 0o600)
            .unwrap();
        assert!(!s.v().join("kubernetes").exists(), "{res:?}");
        assert!(s.v_in_root().join("kubernetes/pki/ca.key").is_file());
        s.victim_intact();
    }
}

#[test]
fn relative_links_are_clamped_at_the_root() {
    for res in RESOLVERS {
        let s = Scene::new();
        // $R/etc -> ../../../../$V/etc: enough `..` to reach `/` from the root, then the victim.
        let rel = format!(
            "{}{}",
            ups(s.r()),
            s.v().join("etc").strip_prefix("/").unwrap().display()
        );
        symlink(&rel, s.r().join("etc")).unwrap();
        let fx = s.fx(res);
        assert_eq!(
            fx.list_dir(Path::new("/etc/kubernetes/manifests")).unwrap(),
            Vec::<String>::new(),
            "{res:?}: listed the victim"
        );
        fx.remove_dir_contents(Path::new("/etc/kubernetes/manifests"))
            .unwrap();
        fx.remove_file(Path::new("/etc/kubernetes/manifests/keep.yaml"))
            .unwrap();
        fs::create_dir_all(s.v_in_root().join("etc")).unwrap();
        fx.write_file(
            Path::new("/etc/kubernetes/admin.conf"),
            Content::Plain(b"a".to_vec()),
            0o600,
        )
        .unwrap();
        s.victim_intact();
        assert!(s.v_in_root().join("etc/kubernetes/admin.conf").is_file());
        // `..` in the host path itself stops at the root too.
        assert_eq!(
            fx.read(Path::new("/../../etc/kubernetes/admin.conf"))
                .unwrap()
                .unwrap(),
            b"a"
        );
    }
}

#[test]
fn a_last_component_link_is_followed_inside_the_root() {
    for res in RESOLVERS {
        let s = Scene::new();
        fs::create_dir_all(s.r().join("etc/kubernetes")).unwrap();
        // Absolute, last: read follows it inside the root, where it names nothing.
        symlink(
            s.v().join("secret"),
            s.r().join("etc/kubernetes/admin.conf"),
        )
        .unwrap();
        // Relative, last, escaping.
        symlink(
            format!(
                "{}{}",
                ups(s.r()),
                s.v().join("secret").strip_prefix("/").unwrap().display()
            ),
            s.r().join("etc/kubernetes/kubelet.conf"),
        )
        .unwrap();
        let fx = s.fx(res);
        for f in ["admin.conf", "kubelet.conf"] {
            let p = Path::new("/etc/kubernetes").join(f);
            assert_eq!(fx.read(&p).unwrap(), None, "{res:?} {f}");
            assert!(!fx.exists(&p), "{res:?} {f}");
        }
        // Inside the root the same links do lead somewhere.
        fs::create_dir_all(s.v_in_root()).unwrap();
        fs::write(s.v_in_root().join("secret"), b"inside").unwrap();
        assert_eq!(
            fx.read(Path::new("/etc/kubernetes/admin.conf"))
                .unwrap()
                .unwrap(),
            b"inside"
        );
        // Writing replaces the link itself; removing removes the link, not its target.
        fx.write_file(
            Path::new("/etc/kubernetes/admin.conf"),
            Content::Plain(b"new".to_vec()),
            0o600,
        )
        .unwrap();
        fx.remove_file(Path::new("/etc/kubernetes/kubelet.conf"))
            .unwrap();
        assert_eq!(fs::read(s.v_in_root().join("secret")).unwrap(), b"inside");
        assert!(
            !fs::symlink_metadata(s.r().join("etc/kubernetes/admin.conf"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        s.victim_intact();
    }
}

#[test]
fn debian_var_run_link_cleans_the_roots_run() {
    for res in RESOLVERS {
        let s = Scene::new();
        fs::create_dir_all(s.r().join("var")).unwrap();
        fs::create_dir_all(s.r().join("run/kubernetes")).unwrap();
        fs::write(s.r().join("run/kubernetes/x"), b"x").unwrap();
        // The usual absolute `/var/run -> /run`: a text join would clean the invoking host's.
        symlink("/run", s.r().join("var/run")).unwrap();
        let fx = s.fx(res);
        let dry = DryRunEffects::new(s.r(), Box::new(std::io::sink()));
        let dir = Path::new("/var/run/kubernetes");
        assert_eq!(dry.list_dir(dir).unwrap(), vec!["x"], "{res:?}");
        assert!(dry.remove_dir_contents(dir).unwrap().is_empty());
        assert!(
            s.r().join("run/kubernetes/x").exists(),
            "dry run removed it"
        );
        assert!(fx.remove_dir_contents(dir).unwrap().is_empty());
        assert!(!s.r().join("run/kubernetes/x").exists(), "{res:?}");
        assert!(s.r().join("run/kubernetes").is_dir());
        assert_eq!(
            crate::resolve(s.r(), Path::new("/var/run/kubernetes/sock")).unwrap(),
            s.r().join("run/kubernetes/sock")
        );
    }
}

#[test]
fn dry_run_lists_what_the_real_run_removes() {
    let s = Scene::new();
    symlink(s.v().join("etc"), s.r().join("etc")).unwrap();
    let inside = s.v_in_root().join("etc/kubernetes/manifests");
    fs::create_dir_all(&inside).unwrap();
    fs::write(inside.join("etcd.yaml"), b"e").unwrap();
    let dir = Path::new("/etc/kubernetes/manifests");
    let dry = DryRunEffects::new(s.r(), Box::new(std::io::sink()));
    dry.remove_dir_contents(dir).unwrap();
    let listed = match &dry.actions()[0] {
        crate::Action::RemoveDirContents { entries, .. } => entries.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        listed,
        vec!["etcd.yaml"],
        "the victim's keep.yaml must not show"
    );
    RealEffects::new(s.r()).remove_dir_contents(dir).unwrap();
    assert_eq!(fs::read_dir(&inside).unwrap().count(), 0);
    s.victim_intact();
}

#[test]
fn a_file_in_the_way_fails_real_and_dry_run_alike() {
    let s = Scene::new();
    fs::write(s.r().join("etc"), b"not a dir").unwrap();
    let p = Path::new("/etc/kubernetes/pki/ca.crt");
    let real = RealEffects::new(s.r())
        .write_file(p, Content::Plain(b"c".to_vec()), 0o644)
        .unwrap_err();
    let dry = DryRunEffects::new(s.r(), Box::new(std::io::sink()))
        .write_file(p, Content::Plain(b"c".to_vec()), 0o644)
        .unwrap_err();
    assert_eq!(real.to_string(), dry.to_string());
    assert!(
        real.to_string().contains("/etc/kubernetes/pki/ca.crt"),
        "{real}"
    );
}

#[test]
fn link_loops_end_with_an_error() {
    for res in RESOLVERS {
        let s = Scene::new();
        symlink("/b", s.r().join("a")).unwrap();
        symlink("a", s.r().join("b")).unwrap();
        let fx = s.fx(res);
        assert!(fx.read(Path::new("/a/x")).is_err(), "{res:?}");
        assert!(
            fx.write_file(Path::new("/a/x"), Content::Plain(vec![]), 0o600)
                .is_err()
        );
    }
}

#[test]
fn fifos_are_not_read() {
    let s = Scene::new();
    let status = std::process::Command::new("mkfifo")
        .arg(s.r().join("fifo"))
        .status();
    if !matches!(status, Ok(st) if st.success()) {
        assert!(std::env::var("CI").is_err(), "mkfifo is needed");
        eprintln!("skipped: no mkfifo");
        return;
    }
    let err = RealEffects::new(s.r())
        .read(Path::new("/fifo"))
        .unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

#[test]
fn a_missing_or_file_root_is_refused() {
    let s = Scene::new();
    let missing = s.r().join("typo");
    let e = crate::check_root(&missing).unwrap_err().to_string();
    assert!(e.contains("--rootfs") && e.contains("typo"), "{e}");
    assert!(!missing.exists());
    fs::write(&missing, b"f").unwrap();
    let e = crate::check_root(&missing).unwrap_err().to_string();
    assert!(e.contains("not a directory"), "{e}");
    crate::check_root(s.r()).unwrap();
}

#[test]
fn input_files_are_bounded_and_regular() {
    let s = Scene::new();
    let big = s.r().join("big.yaml");
    fs::write(&big, vec![b'#'; (crate::INPUT_LIMIT + 1) as usize]).unwrap();
    let e = crate::read_input(&big, crate::INPUT_LIMIT)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("big.yaml") && e.contains("larger than 4 MiB"),
        "{e}"
    );
    let e = crate::read_input(Path::new("/dev/zero"), crate::INPUT_LIMIT)
        .unwrap_err()
        .to_string();
    assert!(e.contains("/dev/zero") && e.contains("device"), "{e}");
    let e = crate::read_input(s.r(), crate::INPUT_LIMIT)
        .unwrap_err()
        .to_string();
    assert!(e.contains("directory"), "{e}");
    let fifo = s.r().join("fifo");
    if std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|st| st.success())
    {
        let e = crate::read_input(&fifo, crate::INPUT_LIMIT)
            .unwrap_err()
            .to_string();
        assert!(e.contains("FIFO"), "{e}");
    }
    let ok = s.r().join("ok.yaml");
    fs::write(&ok, b"a: 1\n").unwrap();
    assert_eq!(
        crate::read_input(&ok, crate::INPUT_LIMIT).unwrap(),
        b"a: 1\n"
    );
}

#[test]
fn streamed_writes_renames_and_directory_removals_stay_inside() {
    for res in RESOLVERS {
        let s = Scene::new();
        fs::create_dir_all(s.v_in_root().join("etc")).unwrap();
        symlink(s.v().join("etc"), s.r().join("etc")).unwrap();
        let fx = s.fx(res);
        let snap = Path::new("/etc/kubernetes/backup/snap.db");
        fx.write_with(snap, 0o600, "etcd snapshot", &mut |w| w.write_all(b"db"))
            .unwrap();
        let moved = Path::new("/etc/kubernetes/manifests/keep.yaml");
        // The victim has a keep.yaml at that host path; inside the root there is none yet.
        fx.rename(snap, moved).unwrap();
        assert!(
            fx.rename(moved, moved).is_err(),
            "an existing target is kept"
        );
        fx.remove_dir(Path::new("/etc/kubernetes/backup")).unwrap();
        assert_eq!(
            fs::read(s.v_in_root().join("etc/kubernetes/manifests/keep.yaml")).unwrap(),
            b"db"
        );
        assert!(!s.v_in_root().join("etc/kubernetes/backup").exists());
        s.victim_intact();
    }
}
