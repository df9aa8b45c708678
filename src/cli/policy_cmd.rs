//! `palisade policy ...`: authoring tools.

use std::path::PathBuf;
use std::process::ExitCode;

/// Loads and compiles each policy; prints a summary or the first error.
pub fn check(paths: Vec<PathBuf>) -> ExitCode {
    let paths = if paths.is_empty() { vec![super::default_policy()] } else { paths };
    let mut failed = false;
    for path in &paths {
        match crate::policy::load_path(path) {
            Ok(policy) => println!(
                "ok: {} — policy `{}`: {} rules, {} categories, {} files",
                path.display(),
                policy.name,
                policy.rules.len(),
                policy.categories.len(),
                policy.files.len()
            ),
            Err(e) => {
                failed = true;
                eprintln!("error: {e}");
            }
        }
    }
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}
