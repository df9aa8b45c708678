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
