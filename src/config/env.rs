//! Config keys overridden by environment variables (`PORTCULLIS_A__B=v` → `a.b = v`).

/// The environment variables that override config keys (`PORTCULLIS_A__B=v` → `a.b = v`).
pub fn env_overrides() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("PORTCULLIS_") && k.contains("__")
                || k == "PORTCULLIS_MODE"
                || k == "PORTCULLIS_DEVELOPMENT"
        })
        .collect()
}

pub(super) fn apply_env_overrides(
    root: &mut toml::Table,
    env: &[(String, String)],
) -> Result<(), String> {
    for (key, raw) in env {
        let Some(rest) = key.strip_prefix("PORTCULLIS_") else {
            continue;
        };
        let parts: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        if parts.iter().any(String::is_empty) {
            return Err(format!(
                "environment variable `{key}` has an empty key segment"
            ));
        }
        let value = parse_env_value(raw);
        let mut table = &mut *root;
        for (i, part) in parts.iter().enumerate() {
            if i + 1 == parts.len() {
                table.insert(part.clone(), value.clone());
                break;
            }
            let entry = table
                .entry(part.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = match entry {
                toml::Value::Table(t) => t,
                _ => {
                    return Err(format!(
                        "environment variable `{key}`: `{part}` is not a section"
                    ))
                }
            };
        }
    }
    Ok(())
}

fn parse_env_value(raw: &str) -> toml::Value {
    // A value that is valid TOML on its own (number, bool, array, quoted string) keeps its type.
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}
