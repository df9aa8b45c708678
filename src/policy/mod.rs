//! Policies: the YAML model an author writes, its loader, and the compiler
//! that turns it into immutable matchers built once at load time.

mod compile;
mod compiled;
mod load;
pub mod model;

pub use compile::{compile, warm_from};
pub use compiled::{
    CompiledCategory, CompiledPolicy, CompiledRule, CompiledSignal, DirectionMatchers,
    FormMatchers, LeakSettings, Near, SignalSource, StreamSettings, UngatedPattern,
};
pub use load::{LoadedFile, line_of_rule, load_tree};
pub use model::{
    Action, AppliesTo, Direction, Form, ObfuscationSign, RefusalMode, Role, Severity, StreamMode,
    Validator,
};

use std::path::{Path, PathBuf};

use crate::yaml::YamlError;

/// Why a policy could not be loaded. Every variant names the file, and the
/// rule where there is one, so the author knows where to look.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("{}: cannot read policy: {message}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The OS error.
        message: String,
    },
    /// The YAML did not parse or had unknown keys.
    #[error(transparent)]
    Yaml(#[from] YamlError),
    /// Files include each other.
    #[error("{}: include cycle", file.display())]
    IncludeCycle {
        /// A file on the cycle.
        file: PathBuf,
    },
    /// A regex did not compile.
    #[error("{}{}: rule `{rule}`: invalid regex `{pattern}`: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Regex {
        /// The file.
        file: PathBuf,
        /// Line of the rule.
        line: Option<usize>,
        /// The rule id.
        rule: String,
        /// The pattern.
        pattern: String,
        /// The regex engine's explanation.
        message: String,
    },
    /// A classifier model could not be loaded.
    #[error("{}: rule `{rule}`: cannot load classifier `{}`: {message}", file.display(), model.display())]
    Classifier {
        /// The policy file.
        file: PathBuf,
        /// The rule id.
        rule: String,
        /// The model path.
        model: PathBuf,
        /// Why.
        message: String,
    },
    /// The policy is well-formed YAML but would not work as written.
    #[error("{}{}: {message}", file.display(), rule.as_ref().map(|r| format!(": rule `{r}`")).unwrap_or_default())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The rule id, when the mistake is inside a rule.
        rule: Option<String>,
        /// What is wrong.
        message: String,
    },
}

/// Loads and compiles the policy rooted at `paths` (the first path's settings win).
pub fn load(paths: &[PathBuf]) -> Result<CompiledPolicy, PolicyError> {
    let files = load_tree(paths)?;
    compile(&files)
}

/// Loads a single policy file (convenience for the CLI and tests).
pub fn load_path(path: &Path) -> Result<CompiledPolicy, PolicyError> {
    load(&[path.to_path_buf()])
}

#[cfg(test)]
mod tests;
