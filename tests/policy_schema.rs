//! The JSON Schema shipped for editors matches the policy format the code
//! accepts (regenerate with `palisade policy schema > docs/policy.schema.json`).

use std::path::Path;

#[test]
fn shipped_schema_is_current() {
    let generated = schemars::schema_for!(palisade::policy::model::PolicyFile);
    let generated = serde_json::to_value(&generated).unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/policy.schema.json");
    let shipped: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(
        generated == shipped,
        "docs/policy.schema.json is stale: run `palisade policy schema > docs/policy.schema.json`"
    );
}
