//! Reads a root policy file and everything it includes, in order.
//!
//! `include` entries are paths relative to the including file; an entry that
//! names a directory includes every `*.yaml` / `*.yml` file in it, sorted by
//! name, so adding a category is dropping a file into `policies/categories/`.

use std::path::{Path, PathBuf};

use super::PolicyError;
use super::model::PolicyFile;
use crate::yaml;

/// A parsed policy file and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    /// Path as resolved from the root.
    pub path: PathBuf,
    /// Its parsed contents.
    pub file: PolicyFile,
    /// The file's text, kept so later passes can point at lines.
    pub source: String,
}

/// Loads `roots` and their includes depth-first; the first root is the one
/// whose settings (refusal, decode, steer, category overrides) apply.
pub fn load_tree(roots: &[PathBuf]) -> Result<Vec<LoadedFile>, PolicyError> {
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for root in roots {
        load_one(root, &mut out, &mut stack)?;
    }
    Ok(out)
}

fn load_one(
    path: &Path,
    out: &mut Vec<LoadedFile>,
    stack: &mut Vec<PathBuf>,
) -> Result<(), PolicyError> {
    let canonical = path.canonicalize().map_err(|e| PolicyError::Read {
        file: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if stack.contains(&canonical) {
        return Err(PolicyError::IncludeCycle {
            file: path.to_path_buf(),
        });
    }
    if out
        .iter()
        .any(|f: &LoadedFile| f.path.canonicalize().ok().as_ref() == Some(&canonical))
    {
        return Ok(()); // included twice through different parents: load once
    }
    let source = std::fs::read_to_string(path).map_err(|e| PolicyError::Read {
        file: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let file: PolicyFile = yaml::parse_str(&source, path)?;
    if let Some(version) = file.version
        && version != 1
    {
        return Err(PolicyError::Invalid {
            file: path.to_path_buf(),
            rule: None,
            message: format!("unsupported `version: {version}` (this Palisade reads version 1)"),
        });
    }
    let includes = file.include.clone();
    out.push(LoadedFile {
        path: path.to_path_buf(),
        file,
        source,
    });
    stack.push(canonical);
    let base = path.parent().unwrap_or(Path::new("."));
    for include in includes {
        for target in expand_include(&base.join(&include), path)? {
            load_one(&target, out, stack)?;
        }
    }
    stack.pop();
    Ok(())
}

fn expand_include(target: &Path, from: &Path) -> Result<Vec<PathBuf>, PolicyError> {
    if !target.is_dir() {
        if !target.exists() {
            return Err(PolicyError::Invalid {
                file: from.to_path_buf(),
                rule: None,
                message: format!("include `{}` does not exist", target.display()),
            });
        }
        return Ok(vec![target.to_path_buf()]);
    }
    let entries = std::fs::read_dir(target).map_err(|e| PolicyError::Read {
        file: target.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file() && matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// 1-based line of the first `id: <rule id>` in a file's text, so errors and
/// `policy test` can point at the rule.
pub fn line_of_rule(source: &str, rule_id: &str) -> Option<usize> {
    source
        .lines()
        .position(|line| {
            let t = line.trim_start().trim_start_matches("- ").trim();
            t.strip_prefix("id:")
                .map(|v| v.trim().trim_matches(['"', '\'']) == rule_id)
                .unwrap_or(false)
        })
        .map(|i| i + 1)
}
