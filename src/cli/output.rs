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

pub fn time(ms: u64) -> String {
    crate::state::cluster::rfc3339(ms)
}
