//! The one trait kubeadm's error types share: [`Hint`], what the operator can do about an
//! error. The binary prints `error: …`, each `caused by: …`, then the `hint: …` of the error
//! it got; each crate's error type says its own hint, so that a hint lives beside the error it
//! explains. A crate of its own because every other crate, down to the lowest, implements it.

/// What the operator can do about an error: the flag, file or command that fixes it.
pub trait Hint: std::error::Error {
    /// The hint, or `None` when there is nothing more to say than the error itself.
    fn hint(&self) -> Option<String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Missing(&'static str);

    impl std::fmt::Display for Missing {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{} does not exist", self.0)
        }
    }

    impl std::error::Error for Missing {}

    impl Hint for Missing {
        fn hint(&self) -> Option<String> {
            (!self.0.is_empty()).then(|| format!("create {}", self.0))
        }
    }

    #[test]
    fn hints_are_reached_through_the_trait_object() {
        let errors: Vec<Box<dyn Hint>> = vec![Box::new(Missing("a.yaml")), Box::new(Missing(""))];
        let hints: Vec<Option<String>> = errors.iter().map(|e| e.hint()).collect();
        assert_eq!(hints, [Some("create a.yaml".to_string()), None]);
    }
}
