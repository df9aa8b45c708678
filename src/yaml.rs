//! Strict YAML loading shared by the server configuration and the policy files.
//!
//! Palisade's own files are parsed strictly (unknown keys are errors) and every
//! error names the file, the line and column, and the key path, so an operator
//! can fix a typo without reading Rust.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A YAML file that could not be read or did not match the expected shape.
#[derive(Debug, thiserror::Error)]
pub struct YamlError {
    /// The file that failed.
    pub file: PathBuf,
    /// 1-based line of the mistake, when the parser knows it.
    pub line: Option<usize>,
    /// 1-based column of the mistake, when the parser knows it.
    pub column: Option<usize>,
    /// Dotted key path to the offending value (`upstreams[0].base_url`), when known.
    pub key_path: Option<String>,
    /// What is wrong, in the parser's words.
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(path) = &self.key_path {
            write!(f, ": at `{path}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Reads and strictly deserialises one YAML file.
pub fn load_file<T: DeserializeOwned>(path: &Path) -> Result<T, YamlError> {
    let text = std::fs::read_to_string(path).map_err(|e| YamlError {
        file: path.to_path_buf(),
        line: None,
        column: None,
        key_path: None,
        message: format!("cannot read file: {e}"),
    })?;
    parse_str(&text, path)
}

/// Strictly deserialises YAML text; `origin` is only used in error messages.
pub fn parse_str<T: DeserializeOwned>(text: &str, origin: &Path) -> Result<T, YamlError> {
    let deserializer = yaml_serde::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let location = inner.location();
        YamlError {
            file: origin.to_path_buf(),
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            key_path: (path != "." && !path.is_empty()).then_some(path),
            message: strip_location_suffix(&inner.to_string()),
        }
    })
}

/// yaml_serde appends " at line X column Y" to its messages; we print the
/// location ourselves in `file:line:col` form, so drop the duplicate.
fn strip_location_suffix(message: &str) -> String {
    match message.find(" at line ") {
        Some(idx) => message[..idx].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = "items:\n  - name: a\n  - name: b\n    nmae: c\n";
        let err = parse_str::<Outer>(text, Path::new("x.yaml")).unwrap_err();
        assert_eq!(err.line, Some(4), "{err}");
        assert!(err.message.contains("unknown field `nmae`"), "{err}");
        assert_eq!(err.key_path.as_deref(), Some("items[1].nmae"), "{err}");
        assert!(err.to_string().starts_with("x.yaml:4:"), "{err}");
    }

    #[test]
    fn type_error_is_located() {
        let err = parse_str::<Outer>("items: 3\n", Path::new("y.yaml")).unwrap_err();
        assert_eq!(err.line, Some(1));
        assert!(err.to_string().contains("y.yaml:1:"));
    }
}
