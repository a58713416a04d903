//! The phase engine: a command's phases are a tree of values (name, help, the flags each
//! phase uses, children, run function); one runner orders them, honours `--skip-phases`, runs
//! one phase for `<command> phase <name>`, and renders the phase list for `--help`.

use std::fmt;

/// What a phase does when it runs: a function, or a closure carrying its payload (the
/// certificate or kubeconfig row a generated leaf stands for).
pub type RunFn<C, E> = Box<dyn Fn(&mut C) -> Result<(), E> + Send + Sync>;

/// A predicate deciding at run time whether a phase applies (e.g. etcd only when local).
pub type RunIfFn<C> = fn(&C) -> bool;

/// One phase of a workflow.
pub struct Phase<C, E> {
    /// Name as typed on the command line (`certs`, `ca`).
    pub name: &'static str,
    /// Other accepted names.
    pub aliases: &'static [&'static str],
    /// One-line help.
    pub short: &'static str,
    /// Longer help for `<command> phase <name> --help` (`None`: the one-line help).
    pub long: Option<String>,
    /// The command's flags this phase uses, by long name (`None`: all of them). The
    /// `phase` sub-command's help lists only these, as upstream's `InheritFlags` does.
    pub flags: Option<Vec<&'static str>>,
    /// The phase's work; `None` for pure groups.
    pub run: Option<RunFn<C, E>>,
    /// Whether it applies to this run.
    pub run_if: Option<RunIfFn<C>>,
    /// Sub-phases, in order.
    pub children: Vec<Phase<C, E>>,
    /// Offer an `all` sub-command that runs every child.
    pub run_all_siblings: bool,
}

impl<C, E> Phase<C, E> {
    /// A leaf phase.
    pub fn leaf(
        name: &'static str,
        short: &'static str,
        run: impl Fn(&mut C) -> Result<(), E> + Send + Sync + 'static,
    ) -> Self {
        Phase {
            name,
            aliases: &[],
            short,
            long: None,
            flags: None,
            run: Some(Box::new(run)),
            run_if: None,
            children: Vec::new(),
            run_all_siblings: false,
        }
    }

    /// A group of phases with an `all` sub-command.
    pub fn group(name: &'static str, short: &'static str, children: Vec<Phase<C, E>>) -> Self {
        Phase {
            name,
            aliases: &[],
            short,
            long: None,
            flags: None,
            run: None,
            run_if: None,
            children,
            run_all_siblings: true,
        }
    }

    /// Sets the run-time predicate.
    pub fn when(mut self, f: RunIfFn<C>) -> Self {
        self.run_if = Some(f);
        self
    }

    /// Sets aliases.
    pub fn aliases(mut self, aliases: &'static [&'static str]) -> Self {
        self.aliases = aliases;
        self
    }

    /// Sets the long help.
    pub fn long(mut self, long: impl Into<String>) -> Self {
        self.long = Some(long.into());
        self
    }

    /// Sets the flags this phase uses (long names, without `--`).
    pub fn flags(mut self, flags: &[&'static str]) -> Self {
        self.flags = Some(flags.to_vec());
        self
    }

    /// Gives a group its own step, run before its children (e.g. checking every existing
    /// certificate before the first one is written).
    pub fn with_run(
        mut self,
        run: impl Fn(&mut C) -> Result<(), E> + Send + Sync + 'static,
    ) -> Self {
        self.run = Some(Box::new(run));
        self
    }

    /// The flags this phase's sub-command shows: a leaf's own; for a group (and its `all`),
    /// its own plus every phase's below it. `None` when any of them uses all the command's
    /// flags.
    pub fn all_flags(&self) -> Option<Vec<&'static str>> {
        if self.children.is_empty() {
            return self.flags.clone();
        }
        let mut out = self.flags.clone().unwrap_or_default();
        for c in &self.children {
            for f in c.all_flags()? {
                if !out.contains(&f) {
                    out.push(f);
                }
            }
        }
        Some(out)
    }
}

/// A phase in run order with its full path (`certs/ca`).
pub struct FlatPhase<'a, C, E> {
    /// `parent/child` path.
    pub path: String,
    /// Depth in the tree (0 for top level).
    pub depth: usize,
    /// The phase.
    pub phase: &'a Phase<C, E>,
}

/// Errors of the engine itself or of a phase.
#[derive(Debug)]
pub enum WorkflowError<E> {
    /// A name in `--skip-phases` or `phase …` matches no phase.
    UnknownPhase {
        /// The name given.
        name: String,
        /// Every valid path.
        valid: Vec<String>,
    },
    /// A phase failed.
    Phase {
        /// Its path.
        path: String,
        /// Its error.
        source: E,
    },
}

impl<E: fmt::Display> fmt::Display for WorkflowError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkflowError::UnknownPhase { name, valid } => {
                write!(
                    f,
                    "invalid phase name: {name} (valid phases: {})",
                    valid.join(", ")
                )
            }
            WorkflowError::Phase { path, source } => {
                write!(f, "error execution phase {path}: {source}")
            }
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for WorkflowError<E> {}

/// A command's phase tree.
pub struct Workflow<C, E> {
    /// The command's name (`init`), for help.
    pub command: &'static str,
    /// Top-level phases in order.
    pub phases: Vec<Phase<C, E>>,
}

fn flatten_into<'a, C, E>(
    phases: &'a [Phase<C, E>],
    prefix: &str,
    depth: usize,
    out: &mut Vec<FlatPhase<'a, C, E>>,
) {
    for p in phases {
        let path = if prefix.is_empty() {
            p.name.to_string()
        } else {
            format!("{prefix}/{}", p.name)
        };
        out.push(FlatPhase {
            path: path.clone(),
            depth,
            phase: p,
        });
        flatten_into(&p.children, &path, depth + 1, out);
    }
}

/// True when `path` is `ancestor` or lies below it.
fn within(path: &str, ancestor: &str) -> bool {
    path == ancestor || path.starts_with(ancestor) && path[ancestor.len()..].starts_with('/')
}

impl<C, E> Workflow<C, E> {
    /// Every phase in run order.
    pub fn flatten(&self) -> Vec<FlatPhase<'_, C, E>> {
        let mut out = Vec::new();
        flatten_into(&self.phases, "", 0, &mut out);
        out
    }

    /// Resolves a name (path or alias path) to its canonical path.
    pub fn resolve(&self, name: &str) -> Result<String, WorkflowError<E>> {
        let flat = self.flatten();
        if let Some(p) = flat.iter().find(|p| p.path == name) {
            return Ok(p.path.clone());
        }
        // Aliases: compare each segment against the name or its aliases.
        let wanted: Vec<&str> = name.split('/').collect();
        for p in &flat {
            let segments: Vec<&str> = p.path.split('/').collect();
            if segments.len() == wanted.len() && segments.last().is_some_and(|_| true) {
                let last_ok = p.phase.aliases.contains(wanted.last().unwrap_or(&""));
                if last_ok && segments[..segments.len() - 1] == wanted[..wanted.len() - 1] {
                    return Ok(p.path.clone());
                }
            }
        }
        Err(WorkflowError::UnknownPhase {
            name: name.to_string(),
            valid: flat.iter().map(|p| p.path.clone()).collect(),
        })
    }

    /// Validates and canonicalizes a `--skip-phases` list.
    pub fn resolve_skips(&self, skips: &[String]) -> Result<Vec<String>, WorkflowError<E>> {
        skips
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| self.resolve(s))
            .collect()
    }

    /// The paths that would run, in order, for a selection (`None` = the whole command) and a
    /// resolved skip list. Run-time predicates are not evaluated here.
    pub fn plan(&self, select: Option<&str>, skips: &[String]) -> Vec<String> {
        self.flatten()
            .into_iter()
            .filter(|p| select.is_none_or(|s| within(&p.path, s)))
            .filter(|p| !skips.iter().any(|s| within(&p.path, s)))
            .map(|p| p.path)
            .collect()
    }

    /// Runs the selected phases in order. `on_phase` is told each phase path before it runs.
    pub fn run(
        &self,
        ctx: &mut C,
        select: Option<&str>,
        skips: &[String],
        mut on_phase: impl FnMut(&str),
    ) -> Result<(), WorkflowError<E>> {
        let selected = match select {
            Some(s) => Some(self.resolve(s)?),
            None => None,
        };
        let skips = self.resolve_skips(skips)?;
        let plan = self.plan(selected.as_deref(), &skips);
        let flat = self.flatten();
        // A phase whose predicate is false skips its whole subtree.
        let mut disabled: Vec<String> = Vec::new();
        for path in plan {
            if disabled.iter().any(|d| within(&path, d)) {
                continue;
            }
            let Some(fp) = flat.iter().find(|p| p.path == path) else {
                continue;
            };
            if let Some(pred) = fp.phase.run_if
                && !pred(ctx)
            {
                disabled.push(path.clone());
                continue;
            }
            if let Some(run) = &fp.phase.run {
                on_phase(&path);
                run(ctx).map_err(|source| WorkflowError::Phase {
                    path: path.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// The phase list for `--help`, in upstream's layout.
    pub fn help(&self) -> String {
        let flat = self.flatten();
        let rows: Vec<(String, &str)> = flat
            .iter()
            .map(|p| {
                let label = if p.depth == 0 {
                    p.phase.name.to_string()
                } else {
                    format!("{}/{}", "  ".repeat(p.depth), p.phase.name)
                };
                (label, p.phase.short)
            })
            .collect();
        let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0) + 2;
        let mut out = format!(
            "The \"{}\" command executes the following phases:\n```\n",
            self.command
        );
        for (label, short) in rows {
            out.push_str(&format!("{label:width$}{short}\n"));
        }
        out.push_str("```\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Ctx = Vec<&'static str>;
    fn a(c: &mut Ctx) -> Result<(), String> {
        c.push("a");
        Ok(())
    }
    fn b1(c: &mut Ctx) -> Result<(), String> {
        c.push("b/one");
        Ok(())
    }
    fn b2(c: &mut Ctx) -> Result<(), String> {
        c.push("b/two");
        Ok(())
    }
    fn d(c: &mut Ctx) -> Result<(), String> {
        c.push("d");
        Err("boom".into())
    }
    fn never(_: &Ctx) -> bool {
        false
    }

    fn wf() -> Workflow<Ctx, String> {
        Workflow {
            command: "init",
            phases: vec![
                Phase::leaf("a", "first", a),
                Phase::group(
                    "b",
                    "group",
                    vec![
                        Phase::leaf("one", "b1", b1),
                        Phase::leaf("two", "b2", b2).aliases(&["2"]),
                    ],
                ),
                Phase::leaf("c", "conditional", a).when(never),
                Phase::leaf("d", "fails", d),
            ],
        }
    }

    #[test]
    fn runs_in_order_and_reports_the_failing_phase() {
        let mut ctx = Vec::new();
        let err = wf().run(&mut ctx, None, &[], |_| {}).unwrap_err();
        assert_eq!(ctx, vec!["a", "b/one", "b/two", "d"]);
        assert_eq!(err.to_string(), "error execution phase d: boom");
    }

    #[test]
    fn skips_groups_and_single_phases() {
        let mut ctx = Vec::new();
        let _ = wf().run(&mut ctx, None, &["b/2".into(), "d".into()], |_| {});
        assert_eq!(ctx, vec!["a", "b/one"]);
        let mut ctx = Vec::new();
        let _ = wf().run(&mut ctx, None, &["b".into(), "d".into()], |_| {});
        assert_eq!(ctx, vec!["a"]);
    }

    #[test]
    fn selects_one_phase_or_a_group() {
        let mut ctx = Vec::new();
        wf().run(&mut ctx, Some("b"), &[], |_| {}).unwrap();
        assert_eq!(ctx, vec!["b/one", "b/two"]);
        let mut ctx = Vec::new();
        wf().run(&mut ctx, Some("b/two"), &[], |_| {}).unwrap();
        assert_eq!(ctx, vec!["b/two"]);
    }

    #[test]
    fn unknown_names_are_errors() {
        let mut ctx = Vec::new();
        let err = wf()
            .run(&mut ctx, None, &["nope".into()], |_| {})
            .unwrap_err();
        assert!(err.to_string().starts_with("invalid phase name: nope"));
        assert!(ctx.is_empty(), "nothing runs when the skip list is wrong");
    }

    #[test]
    fn help_lists_phases_in_order() {
        let h = wf().help();
        let a = h.find("a ").unwrap();
        let one = h.find("  /one").unwrap();
        assert!(a < one && h.contains("\"init\""));
    }

    #[test]
    fn closures_carry_their_payload_and_groups_collect_flags() {
        let names = ["x", "y"];
        let leaves: Vec<Phase<Ctx, String>> = names
            .iter()
            .map(|&n| {
                Phase::leaf(n, "generated", move |c: &mut Ctx| {
                    c.push(n);
                    Ok(())
                })
                .flags(&["config", n])
            })
            .collect();
        let w = Workflow {
            command: "t",
            phases: vec![Phase::group("g", "group", leaves).flags(&["dry-run"])],
        };
        let mut ctx = Vec::new();
        w.run(&mut ctx, Some("g"), &[], |_| {}).unwrap();
        assert_eq!(ctx, vec!["x", "y"]);
        assert_eq!(
            w.phases[0].all_flags(),
            Some(vec!["dry-run", "config", "x", "y"])
        );
        assert_eq!(
            wf().phases[1].all_flags(),
            None,
            "unset flags mean all of them"
        );
    }
}
