use std::path::Path;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    let mut config: Config = crate::yaml::parse_str(text, Path::new("test.yaml"))?;
    config.apply_env(&EnvOverrides::default());
    config.validate().map_err(|message| ConfigError::Invalid {
        file: "test.yaml".into(),
        message,
    })?;
    Ok(config)
}

const TWO_UPSTREAMS: &str = "
listen: 127.0.0.1:9000
upstreams:
  - name: local
    base_url: http://127.0.0.1:11434/v1
    models: [llama*, qwen2]
  - name: openai
    base_url: https://api.openai.com/v1
    api_key_env: PALISADE_TEST_NO_SUCH_VAR
    default: true
";

#[test]
fn routes_by_model_then_default() {
    let config = parse(TWO_UPSTREAMS).unwrap();
    assert_eq!(config.route(Some("llama3.1")), Some(0));
    assert_eq!(config.route(Some("qwen2")), Some(0));
    assert_eq!(config.route(Some("qwen2.5")), Some(1));
    assert_eq!(config.route(None), Some(1));
}

#[test]
fn unknown_key_is_an_error_with_line() {
    let err = parse("listen: 127.0.0.1:1\nupstream: []\n").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("test.yaml:2:"), "{text}");
    assert!(text.contains("unknown field `upstream`"), "{text}");
}

#[test]
fn limits_have_defaults_that_bound_everything() {
    let config = parse(TWO_UPSTREAMS).unwrap();
    assert_eq!(config.max_header_bytes, 64 * 1024);
    assert_eq!(config.header_read_timeout_secs, 10);
    assert_eq!(config.request_body_timeout_secs, 30);
    assert_eq!(config.request_timeout_secs, 600);
    assert_eq!(config.max_upstream_body_bytes, 64 * 1024 * 1024);
    assert_eq!(config.client_write_timeout_secs, 60);
    assert_eq!(config.max_stream_secs, 3600);
    // The outer request bound leaves room for the upstream's own timeout.
    assert!(config.request_timeout_secs > config.upstreams[0].read_timeout_secs);
}

#[test]
fn invalid_values_are_explained() {
    let cases = [
        (
            "listen: nowhere\nupstreams: [{name: a, base_url: 'http://x'}]\n",
            "listen",
        ),
        ("upstreams: []\n", "upstreams"),
        (
            "upstreams: [{name: a, base_url: 'not a url'}]\n",
            "base_url",
        ),
        (
            "upstreams: [{name: a, base_url: 'ftp://x'}]\n",
            "http or https",
        ),
        (
            "max_header_bytes: 1024\nupstreams: [{name: a, base_url: 'http://x'}]\n",
            "max_header_bytes",
        ),
        (
            "max_upstream_body_bytes: 0\nupstreams: [{name: a, base_url: 'http://x'}]\n",
            "max_upstream_body_bytes",
        ),
        (
            "header_read_timeout_secs: 0\nupstreams: [{name: a, base_url: 'http://x'}]\n",
            "header_read_timeout_secs",
        ),
        (
            "max_stream_secs: 0\nupstreams: [{name: a, base_url: 'http://x'}]\n",
            "max_stream_secs",
        ),
    ];
    for (text, needle) in cases {
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains(needle), "{text:?} -> {err}");
    }
}

#[test]
fn env_overrides_replace_default_upstream() {
    let mut config: Config = crate::yaml::parse_str(TWO_UPSTREAMS, Path::new("t")).unwrap();
    let env = EnvOverrides {
        listen: Some("0.0.0.0:8080".into()),
        upstream_url: Some("http://sidecar:8000/v1".into()),
        upstream_api_key: Some("sk-test".into()),
    };
    config.apply_env(&env);
    assert_eq!(config.listen, "0.0.0.0:8080");
    assert_eq!(config.upstreams[1].base_url, "http://sidecar:8000/v1");
    assert_eq!(config.upstreams[1].api_key.as_deref(), Some("sk-test"));
    assert_eq!(config.upstreams[0].api_key, None);
}
