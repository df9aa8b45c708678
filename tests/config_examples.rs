//! The example configurations shipped in `config/` keep loading, together
//! with every policy they name, as the formats evolve.

use std::path::Path;

use palisade::config::{self, EnvOverrides};
use palisade::proxy::policies::Policies;

#[test]
fn shipped_example_configs_load_with_their_policies() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let config = config::load(Some(&path), &EnvOverrides::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Policies::load(&config).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        seen += 1;
    }
    assert!(seen >= 3, "expected example configs in {}", dir.display());
}

/// No Docker engine runs in CI, so the Dockerfile is checked as text: its
/// build stage must copy everything cargo reads to accept the manifest
/// (cargo refuses a `[[bench]]` whose file is missing), and every path it
/// copies must exist.
#[test]
fn dockerfile_copies_what_the_build_needs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let copied: Vec<&str> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--from"))
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words[..words.len() - 1].to_vec()
        })
        .collect();
    for source in &copied {
        assert!(
            root.join(source).exists(),
            "COPY of a missing path: {source}"
        );
    }
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let mut section = "";
    let mut needed = vec!["Cargo.toml".to_string(), "Cargo.lock".into(), "src".into()];
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[[bench]]"
            && let Some(name) = line.strip_prefix("name = ")
        {
            needed.push(format!("benches/{}.rs", name.trim_matches('"')));
        }
    }
    assert!(
        needed.len() > 3,
        "no [[bench]] found; is the parsing stale?"
    );
    for path in &needed {
        assert!(
            copied
                .iter()
                .any(|c| path == c || path.starts_with(&format!("{c}/"))),
            "the Dockerfile does not copy {path}, which cargo needs"
        );
    }
}
