//! `quantix events list [--limit N] [--follow]`

use clap::Subcommand;
use serde_json::json;

use super::output::{self, Format};
use super::{connect, CliError};
use crate::proto::v1::event_service_client::EventServiceClient;
use crate::proto::v1::*;

#[derive(Subcommand)]
pub enum EventCmd {
    /// The newest events; with --follow, keep printing new ones as they happen.
    List {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long, short = 'f')]
        follow: bool,
    },
}

fn print(out: Format, e: &Event) {
    match out {
        Format::Json => println!(
            "{}",
            json!({"seq": e.seq, "at": output::time(e.at_ms), "by": e.by, "what": e.what, "target": e.target, "ok": e.ok, "message": e.message})
        ),
        Format::Table => {
            let outcome = if e.ok {
                "ok".to_string()
            } else {
                format!("refused: {}", e.message)
            };
            println!(
                "{}  {:<8} {:<22} {:<24} {}",
                output::time(e.at_ms),
                e.by,
                e.what,
                e.target,
                outcome
            );
        }
    }
}

pub async fn run(endpoint: &str, out: Format, cmd: EventCmd) -> Result<(), CliError> {
    let channel = connect(endpoint).await?;
    let mut c = EventServiceClient::new(channel);
    let EventCmd::List { limit, follow } = cmd;
    let events = c
        .list_events(ListEventsRequest {
            after_seq: 0,
            limit,
            consistency: 0,
        })
        .await?
        .into_inner()
        .events;
    if out == Format::Json && !follow {
        let docs: Vec<serde_json::Value> = events
            .iter()
            .map(|e| json!({"seq": e.seq, "at": output::time(e.at_ms), "by": e.by, "what": e.what, "target": e.target, "ok": e.ok, "message": e.message}))
            .collect();
        output::json(&json!({ "events": docs }));
        return Ok(());
    }
    let mut last = 0;
    for e in &events {
        print(out, e);
        last = e.seq;
    }
    if !follow {
        return Ok(());
    }
    // Follow: each new event shows up in the change feed; fetch the events after the last one.
    let mut stream = c
        .watch(WatchRequest {
            from_revision: 0,
            entities: vec!["event".into()],
        })
        .await?
        .into_inner();
    while let Some(change) = stream.message().await? {
        let _ = change;
        let new = c
            .list_events(ListEventsRequest {
                after_seq: last,
                limit: 1000,
                consistency: 1,
            })
            .await?
            .into_inner()
            .events;
        for e in &new {
            print(out, e);
            last = e.seq;
        }
    }
    Ok(())
}
