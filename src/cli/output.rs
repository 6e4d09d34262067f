//! Output: tables for people, one JSON document for scripts.

use clap::ValueEnum;
use comfy_table::{presets::NOTHING, Table};

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

pub fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.set_header(headers.iter().map(|h| h.to_uppercase()));
    for r in rows {
        t.add_row(r);
    }
    println!("{}", t.trim_fmt());
}

pub fn json(value: &serde_json::Value) {
    // A Value always serialises.
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// A list: one JSON document `{key: [...]}` for scripts, or a table for people.
pub fn list<T>(
    out: Format,
    key: &str,
    items: &[T],
    to_json: impl Fn(&T) -> serde_json::Value,
    headers: &[&str],
    to_row: impl Fn(&T) -> Vec<String>,
) {
    match out {
        Format::Json => {
            let docs: Vec<serde_json::Value> = items.iter().map(to_json).collect();
            json(&serde_json::json!({ key: docs }))
        }
        Format::Table => table(headers, items.iter().map(to_row).collect()),
    }
}

pub fn time(ms: u64) -> String {
    crate::state::cluster::rfc3339(ms)
}
