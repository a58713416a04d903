//! Command lines built as upstream builds them: default flags, overridden by name by the
//! operator's `extraArgs`, sorted by name (then value) and rendered as `--name=value`.

use std::collections::BTreeSet;

use kubeadm_api::v1beta4::Arg;

/// A flag with its value.
pub fn arg(name: &str, value: impl Into<String>) -> Arg {
    Arg {
        name: name.to_string(),
        value: value.into(),
    }
}

/// Sets `name` to `value` in `args`, replacing every earlier value of it.
pub fn set(args: &mut Vec<Arg>, name: &str, value: impl Into<String>) {
    args.retain(|a| a.name != name);
    args.push(arg(name, value));
}

/// The last value of `name` among `args`, if any.
pub fn get<'a>(args: &'a [Arg], name: &str) -> Option<&'a str> {
    args.iter()
        .rev()
        .find(|a| a.name == name)
        .map(|a| a.value.as_str())
}

/// `--name=value` flags: every override, plus each default whose name no override uses
/// (an override replaces all defaults of its name; overrides may repeat a name), sorted by name
/// and then by value.
pub fn to_command(defaults: &[Arg], overrides: &[Arg]) -> Vec<String> {
    let overridden: BTreeSet<&str> = overrides.iter().map(|a| a.name.as_str()).collect();
    let mut all: Vec<&Arg> = overrides.iter().collect();
    all.extend(
        defaults
            .iter()
            .filter(|a| !overridden.contains(a.name.as_str())),
    );
    all.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.value.cmp(&b.value)));
    all.into_iter()
        .map(|a| format!("--{}={}", a.name, a.value))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_by_name_and_may_repeat() {
        let defaults = vec![arg("b", "1"), arg("a", "x"), arg("c", "3")];
        let overrides = vec![arg("c", "9"), arg("c", "8"), arg("d", "")];
        assert_eq!(
            to_command(&defaults, &overrides),
            ["--a=x", "--b=1", "--c=8", "--c=9", "--d="]
        );
    }
}
