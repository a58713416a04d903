//! systemd units for kubeadm's periodic jobs (etcd snapshots, certificate renewal): one
//! oneshot service running a kubeadm command and one timer starting it.
//!
//! Both jobs go through [`TimerJob`] so their units look alike and are verified alike
//! (`systemd-analyze verify` in the tests).

use std::time::Duration;

/// Where kubeadm writes the units it owns (the administrator's unit directory, as a package
/// would not use it).
pub const UNIT_DIR: &str = "/etc/systemd/system";

/// A command run periodically by a systemd timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerJob {
    /// Unit name without suffix (`kubeadm-etcd-snapshot`): gives `NAME.service` and `NAME.timer`.
    pub name: String,
    /// One line for `Description=`.
    pub description: String,
    /// The program (absolute path) and its arguments.
    pub command: Vec<String>,
    /// Time between two runs (the first one this long after boot or after the timer starts).
    pub every: Duration,
    /// Spread of the start time, so nodes of one cluster do not all run at the same second.
    pub randomized_delay: Duration,
}

/// Why a job cannot be turned into units.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UnitError {
    /// The unit name is not a plain systemd unit name.
    #[error(
        "invalid unit name {0:?}: use letters, digits, '-', '_' and '.', without a .service/.timer suffix"
    )]
    Name(String),
    /// The command is empty or its program is not an absolute path.
    #[error("the command of unit {0} must start with an absolute program path")]
    Program(String),
    /// An interval of zero or below one second.
    #[error("the interval of unit {0} must be at least one second")]
    Interval(String),
    /// An argument holds a character systemd cannot carry on one `ExecStart=` line.
    #[error("an argument of unit {unit} holds a newline or NUL: {arg:?}")]
    Argument {
        /// The unit.
        unit: String,
        /// The argument.
        arg: String,
    },
}

impl kubeadm_errors::Hint for UnitError {
    fn hint(&self) -> Option<String> {
        Some("check the flag values used for the unit".into())
    }
}

impl TimerJob {
    fn check(&self) -> Result<(), UnitError> {
        let ok_name = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !self.name.ends_with(".service")
            && !self.name.ends_with(".timer");
        if !ok_name {
            return Err(UnitError::Name(self.name.clone()));
        }
        match self.command.first() {
            Some(p) if p.starts_with('/') => {}
            _ => return Err(UnitError::Program(self.name.clone())),
        }
        if self.every < Duration::from_secs(1) {
            return Err(UnitError::Interval(self.name.clone()));
        }
        if let Some(arg) = self
            .command
            .iter()
            .find(|a| a.contains('\n') || a.contains('\0'))
        {
            return Err(UnitError::Argument {
                unit: self.name.clone(),
                arg: arg.clone(),
            });
        }
        Ok(())
    }

    /// `NAME.service`.
    pub fn service_name(&self) -> String {
        format!("{}.service", self.name)
    }

    /// `NAME.timer`.
    pub fn timer_name(&self) -> String {
        format!("{}.timer", self.name)
    }

    /// The oneshot service running the command.
    pub fn service(&self) -> Result<String, UnitError> {
        self.check()?;
        let exec: Vec<String> = self.command.iter().map(|a| quote(a)).collect();
        Ok(format!(
            "# Written by kubeadm; remove it with the command's --disable flag.\n\
             [Unit]\n\
             Description={}\n\
             Documentation=https://kubernetes.io/docs/reference/setup-tools/kubeadm/\n\
             After=network-online.target\n\
             Wants=network-online.target\n\
             \n\
             [Service]\n\
             Type=oneshot\n\
             ExecStart={}\n",
            self.description,
            exec.join(" ")
        ))
    }

    /// The timer starting the service every [`TimerJob::every`].
    pub fn timer(&self) -> Result<String, UnitError> {
        self.check()?;
        Ok(format!(
            "# Written by kubeadm; remove it with the command's --disable flag.\n\
             [Unit]\n\
             Description={} (timer)\n\
             \n\
             [Timer]\n\
             OnBootSec={}\n\
             OnUnitActiveSec={}\n\
             RandomizedDelaySec={}\n\
             Unit={}\n\
             \n\
             [Install]\n\
             WantedBy=timers.target\n",
            self.description,
            seconds(self.every),
            seconds(self.every),
            seconds(self.randomized_delay),
            self.service_name()
        ))
    }
}

/// A time span as systemd reads it (`43200s`); whole seconds, which is all a timer needs.
fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

/// One `ExecStart=` word: plain when it is only safe characters, otherwise double-quoted with
/// systemd's escapes. `$` and `%` are doubled in both cases, since systemd expands them even
/// inside quotes.
fn quote(arg: &str) -> String {
    let escaped = arg.replace('%', "%%").replace('$', "$$");
    let plain = !escaped.is_empty()
        && escaped
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-_.,:=+@%$".contains(c));
    if plain {
        return escaped;
    }
    let mut out = String::from("\"");
    for c in escaped.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Parses an interval as the `--every`/`--within` flags take it: Go's duration syntax
/// (`12h`, `90m`, `1h30m`) plus whole days (`7d`, `30d`), which Go lacks but operators type.
pub fn parse_interval(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    if let Some(days) = s.strip_suffix('d')
        && let Ok(n) = days.parse::<u64>()
    {
        return n
            .checked_mul(86400)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("invalid interval {input:?}: too large"));
    }
    match kubeadm_api::Duration::parse(s) {
        Ok(d) if d.0 > 0 => Ok(d.to_std()),
        Ok(_) => Err(format!("invalid interval {input:?}: it must be positive")),
        Err(_) => Err(format!(
            "invalid interval {input:?}: expected e.g. \"12h\", \"30m\" or \"7d\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> TimerJob {
        TimerJob {
            name: "kubeadm-etcd-snapshot".into(),
            description: "kubeadm etcd snapshot".into(),
            command: vec![
                "/usr/bin/kubeadm".into(),
                "etcd".into(),
                "a b".into(),
                "100%".into(),
            ],
            every: Duration::from_secs(12 * 3600),
            randomized_delay: Duration::from_secs(300),
        }
    }

    #[test]
    fn service_quotes_arguments_for_systemd() {
        let s = job().service().unwrap();
        assert!(
            s.contains("ExecStart=/usr/bin/kubeadm etcd \"a b\" 100%%\n"),
            "{s}"
        );
        assert!(s.contains("Type=oneshot"));
    }

    #[test]
    fn timer_runs_every_interval() {
        let t = job().timer().unwrap();
        assert!(t.contains("OnUnitActiveSec=43200s\n"), "{t}");
        assert!(t.contains("Unit=kubeadm-etcd-snapshot.service\n"));
        assert!(t.contains("WantedBy=timers.target"));
    }

    #[test]
    fn bad_jobs_are_refused() {
        let mut j = job();
        j.command[0] = "kubeadm".into();
        assert_eq!(j.service(), Err(UnitError::Program(j.name.clone())));
        let mut j = job();
        j.name = "x.timer".into();
        assert!(matches!(j.timer(), Err(UnitError::Name(_))));
        let mut j = job();
        j.every = Duration::from_millis(10);
        assert!(matches!(j.timer(), Err(UnitError::Interval(_))));
        let mut j = job();
        j.command.push("a\nb".into());
        assert!(matches!(j.service(), Err(UnitError::Argument { .. })));
    }

    #[test]
    fn intervals_parse_days_and_go_durations() {
        assert_eq!(parse_interval("12h").unwrap(), Duration::from_secs(43200));
        assert_eq!(
            parse_interval("30d").unwrap(),
            Duration::from_secs(30 * 86400)
        );
        assert_eq!(parse_interval("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("soon").is_err());
        assert!(parse_interval("-1h").is_err());
    }
}
