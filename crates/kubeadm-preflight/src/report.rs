//! Running the checks and reporting: every check runs, every finding is collected, then all are
//! printed together — the check's name, what was found, the fix, and the
//! `--ignore-preflight-errors=<Name>` that skips it. Ignored errors print as warnings; under
//! `--dry-run` errors print as `[dryrun] would fail: …` and do not stop the command.

use kubeadm_errors::Hint;
use std::collections::BTreeSet;
use std::io::Write;

use kubeadm_effects::Effects;

use crate::{Check, Context, Inputs, IsPrivilegedUser, Problem, Role, checks_for};

/// The names given to `--ignore-preflight-errors` (case-insensitive; `all` ignores every error).
#[derive(Debug, Clone, Default)]
pub struct IgnoreSet {
    all: bool,
    names: BTreeSet<String>,
}

impl IgnoreSet {
    /// From the flag's values (each may itself be a comma-separated list).
    pub fn new<S: AsRef<str>>(list: &[S]) -> Self {
        let names: BTreeSet<String> = list
            .iter()
            .flat_map(|s| {
                s.as_ref()
                    .split(',')
                    .map(|n| n.trim().to_lowercase())
                    .collect::<Vec<_>>()
            })
            .filter(|n| !n.is_empty())
            .collect();
        IgnoreSet {
            all: names.contains("all"),
            names,
        }
    }

    /// As [`IgnoreSet::new`], refusing `all` mixed with individual names (as upstream).
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<Self, PreflightError> {
        let set = IgnoreSet::new(list);
        if set.all && set.names.len() > 1 {
            return Err(PreflightError::BadIgnoreList(
                set.names.iter().cloned().collect::<Vec<_>>().join(","),
            ));
        }
        Ok(set)
    }

    /// True when errors of check `name` are to be shown as warnings.
    pub fn ignores(&self, name: &str) -> bool {
        self.all || self.names.contains(&name.to_lowercase())
    }
}

/// The outcome of one check.
#[derive(Debug, Clone)]
pub struct CheckResult {
    /// The check's name.
    pub name: String,
    /// Warnings, including errors turned into warnings by `--ignore-preflight-errors`.
    pub warnings: Vec<Problem>,
    /// Errors that were not ignored.
    pub errors: Vec<Problem>,
    /// How many of the warnings were ignored errors.
    pub ignored_errors: usize,
}

/// The outcome of a run of checks.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// One entry per check, in run order.
    pub results: Vec<CheckResult>,
}

impl Report {
    /// Runs every check (none stops the others) and applies the ignore list.
    pub fn evaluate(checks: &[Box<dyn Check>], ctx: &Context<'_>, ignore: &IgnoreSet) -> Report {
        let results = checks
            .iter()
            .map(|c| {
                let name = c.name();
                let (mut warnings, mut errors) = c.run(ctx);
                let mut ignored_errors = 0;
                if ignore.ignores(&name) && !errors.is_empty() {
                    ignored_errors = errors.len();
                    warnings.append(&mut errors);
                }
                tracing::debug!(check = %name, warnings = warnings.len(), errors = errors.len(), "pre-flight check");
                CheckResult { name, warnings, errors, ignored_errors }
            })
            .collect();
        Report { results }
    }

    /// Names of the checks that failed (errors not ignored), in run order.
    pub fn failed(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.results.iter().filter(|r| !r.errors.is_empty()) {
            if !out.contains(&r.name) {
                out.push(r.name.clone());
            }
        }
        out
    }

    /// Names of the checks that warned, in run order.
    pub fn warned(&self) -> Vec<String> {
        self.results
            .iter()
            .filter(|r| !r.warnings.is_empty())
            .map(|r| r.name.clone())
            .collect()
    }

    /// The warning lines (`\t[WARNING Name]: …` and the fix).
    pub fn render_warnings(&self) -> String {
        let mut s = String::new();
        for r in &self.results {
            for (i, w) in r.warnings.iter().enumerate() {
                let ignored = i >= r.warnings.len() - r.ignored_errors;
                s.push_str(&format!("\t[WARNING {}]: {}\n", r.name, w.found));
                if let Some(fix) = &w.fix {
                    s.push_str(&format!("\t\tfix: {fix}\n"));
                }
                if ignored {
                    s.push_str(
                        "\t\t(an error, shown as a warning because of --ignore-preflight-errors)\n",
                    );
                }
            }
        }
        s
    }

    /// The error lines: each with its fix and the flag that skips it. In dry-run each line is
    /// prefixed `[dryrun] would fail: `.
    pub fn render_errors(&self, dry_run: bool) -> String {
        let mut s = String::new();
        for r in &self.results {
            for e in &r.errors {
                let lead = if dry_run {
                    "[dryrun] would fail: "
                } else {
                    "\t"
                };
                s.push_str(&format!("{lead}[ERROR {}]: {}\n", r.name, e.found));
                if let Some(fix) = &e.fix {
                    s.push_str(&format!("\t\tfix: {fix}\n"));
                }
                s.push_str(&format!(
                    "\t\tto skip this check: --ignore-preflight-errors={}\n",
                    r.name
                ));
            }
        }
        s
    }

    /// Appends another report.
    pub fn extend(&mut self, other: Report) {
        self.results.extend(other.results);
    }
}

/// Pre-flight checks failed.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// At least one check reported an error that was not ignored.
    #[error("preflight checks failed: {}", .names.join(", "))]
    Failed {
        /// The failed checks.
        names: Vec<String>,
    },
    /// `--ignore-preflight-errors` mixes `all` with check names.
    #[error(
        "invalid value {0:?} for --ignore-preflight-errors: don't specify individual checks if 'all' is used"
    )]
    BadIgnoreList(String),
}

impl Hint for PreflightError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            PreflightError::Failed { names } => format!(
                "fix the problems listed above (each names its fix; `kubeadm host prepare` fixes the kernel module, sysctl and swap ones), or make a check non-fatal with --ignore-preflight-errors={}",
                names.join(",")
            ),
            PreflightError::BadIgnoreList(_) => {
                "pass either --ignore-preflight-errors=all or a list of check names".into()
            }
        })
    }
}

fn fatal(report: &Report, err: &mut dyn Write) -> PreflightError {
    let _ = write!(
        err,
        "[preflight] Some fatal errors occurred:\n{}[preflight] If you know what you are doing, you can make a check non-fatal with `--ignore-preflight-errors=...`\n",
        report.render_errors(false)
    );
    PreflightError::Failed {
        names: report.failed(),
    }
}

/// Runs the checks of `role` in `ctx`: IsPrivilegedUser first and alone (a non-root run fails
/// fast), then every other check. Prints `[preflight] Running pre-flight checks` to `out`, the
/// warnings and errors to `err`. Returns the report, or an error when a check failed and this is
/// not a dry run.
pub fn run_checks_in(
    ctx: &Context<'_>,
    role: Role,
    inputs: &Inputs,
    ignore: &IgnoreSet,
    dry_run: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Report, PreflightError> {
    let _ = writeln!(out, "[preflight] Running pre-flight checks");
    let root: Vec<Box<dyn Check>> = vec![Box::new(IsPrivilegedUser)];
    let mut report = Report::evaluate(&root, ctx, ignore);
    if !dry_run && !report.failed().is_empty() {
        let _ = err.write_all(report.render_warnings().as_bytes());
        return Err(fatal(&report, err));
    }
    report.extend(Report::evaluate(&checks_for(role, inputs), ctx, ignore));
    let _ = err.write_all(report.render_warnings().as_bytes());
    if report.failed().is_empty() {
        return Ok(report);
    }
    if dry_run {
        let _ = err.write_all(report.render_errors(true).as_bytes());
        return Ok(report);
    }
    Err(fatal(&report, err))
}

/// [`run_checks_in`] on the real host context ([`Context::from_host`]), printing to stdout and
/// stderr. This is what init, join and reset call.
pub fn run_checks(
    fx: &dyn Effects,
    role: Role,
    inputs: &Inputs,
    ignore: &[String],
    dry_run: bool,
) -> Result<Report, PreflightError> {
    let ctx = Context::from_host(fx);
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    run_checks_in(
        &ctx,
        role,
        inputs,
        &IgnoreSet::parse(ignore)?,
        dry_run,
        &mut out,
        &mut err,
    )
}

/// Runs `checks` after the role's checks (upstream's separate `RunPullImagesCheck`): prints
/// their warnings, and on an error that is not ignored the same fatal report as
/// [`run_checks`].
pub fn run_more_checks(
    fx: &dyn Effects,
    checks: &[Box<dyn Check>],
    ignore: &[String],
) -> Result<Report, PreflightError> {
    let ctx = Context::from_host(fx);
    let report = Report::evaluate(checks, &ctx, &IgnoreSet::parse(ignore)?);
    let mut err = std::io::stderr();
    let _ = err.write_all(report.render_warnings().as_bytes());
    if report.failed().is_empty() {
        Ok(report)
    } else {
        Err(fatal(&report, &mut err))
    }
}
