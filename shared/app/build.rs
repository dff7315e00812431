//! The built-in configuration as JSON beside its TOML, for the Lambda functions that read it
//! without ever showing its text (`config_files::sample_json`): they then link no TOML parser.
//! The TOML files stay the source; this only translates them, value for value.

use std::path::Path;

const FILES: [&str; 4] = ["leadflow", "scoring", "routing", "campaigns/welcome"];

fn main() {
    let out = std::env::var("OUT_DIR").unwrap_or_else(|e| panic!("cargo sets OUT_DIR: {e}"));
    for file in FILES {
        let source = format!("config/{file}.toml");
        println!("cargo:rerun-if-changed={source}");
        let text = std::fs::read_to_string(&source).unwrap_or_else(|e| panic!("{source}: {e}"));
        let value: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{source}: {e}"));
        refuse_what_json_cannot_say(&source, &value);
        let json = serde_json::to_string(&value).unwrap_or_else(|e| panic!("{source} as JSON: {e}"));
        let target = Path::new(&out).join(format!("{file}.json"));
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        }
        std::fs::write(&target, json).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
    }
}

/// A TOML date-time has no JSON form our types read, and NaN or infinity none at all: the
/// translation would not mean what the file says, so the build stops and names the file.
fn refuse_what_json_cannot_say(source: &str, value: &toml::Value) {
    match value {
        toml::Value::Datetime(_) => panic!("{source}: a date-time has no JSON form; write it as a string"),
        toml::Value::Float(f) if !f.is_finite() => panic!("{source}: {f} has no JSON form"),
        toml::Value::Array(items) => items.iter().for_each(|v| refuse_what_json_cannot_say(source, v)),
        toml::Value::Table(table) => table.values().for_each(|v| refuse_what_json_cannot_say(source, v)),
        _ => {}
    }
}
