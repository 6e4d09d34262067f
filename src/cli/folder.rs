//! `quantix folder ...`

use clap::Subcommand;
use serde_json::json;

use super::output::{self, Format};
use super::{connect, request_id, CliError, Consistency};
use crate::proto::v1::folder_service_client::FolderServiceClient;
use crate::proto::v1::*;

#[derive(Subcommand)]
pub enum FolderCmd {
    /// Create a folder, e.g. /prod/web.
    Create {
        path: String,
        /// Create missing parent folders too.
        #[arg(long, short = 'p')]
        parents: bool,
    },
    /// List folders (all, or one subtree).
    List {
        #[arg(long)]
        under: Option<String>,
        #[arg(long, value_enum, default_value_t = Consistency::Linearizable)]
        consistency: Consistency,
    },
    /// Show one folder.
    Get {
        path: String,
        #[arg(long, value_enum, default_value_t = Consistency::Linearizable)]
        consistency: Consistency,
    },
    /// Delete an empty folder; with --recursive, also every folder below it (refused if any
    /// of them holds a VM).
    Delete {
        path: String,
        #[arg(long, short = 'r')]
        recursive: bool,
    },
    /// Give a folder a new name (the last segment) under the same parent.
    Rename { path: String, new_name: String },
    /// Move a folder, with everything below it, into another folder.
    Move { path: String, new_parent: String },
}

fn folder_json(f: &Folder) -> serde_json::Value {
    json!({"id": f.id, "path": f.path, "name": f.name, "parent": f.parent, "created_at": output::time(f.created_at_ms)})
}

pub async fn run(endpoint: &str, out: Format, cmd: FolderCmd) -> Result<(), CliError> {
    let mut c = FolderServiceClient::new(connect(endpoint).await?);
    match cmd {
        FolderCmd::Create { path, parents } => {
            let f = c
                .create_folder(CreateFolderRequest {
                    path,
                    parents,
                    request_id: request_id(),
                })
                .await?
                .into_inner();
            match out {
                Format::Json => output::json(&folder_json(&f)),
                Format::Table => println!("created folder {}", f.path),
            }
        }
        FolderCmd::List { under, consistency } => {
            let r = c
                .list_folders(ListFoldersRequest {
                    under: under.unwrap_or_default(),
                    consistency: consistency.proto(),
                })
                .await?
                .into_inner();
            output::list(
                out,
                "folders",
                &r.folders,
                folder_json,
                &["path", "id", "created"],
                |f| {
                    vec![
                        f.path.clone(),
                        f.id.to_string(),
                        output::time(f.created_at_ms),
                    ]
                },
            )
        }
        FolderCmd::Get { path, consistency } => {
            let f = c
                .get_folder(GetFolderRequest {
                    path,
                    consistency: consistency.proto(),
                })
                .await?
                .into_inner();
            match out {
                Format::Json => output::json(&folder_json(&f)),
                Format::Table => output::table(
                    &["path", "id", "created"],
                    vec![vec![
                        f.path.clone(),
                        f.id.to_string(),
                        output::time(f.created_at_ms),
                    ]],
                ),
            }
        }
        FolderCmd::Delete { path, recursive } => {
            let r = c
                .delete_folder(DeleteFolderRequest {
                    path: path.clone(),
                    request_id: request_id(),
                    recursive,
                })
                .await?
                .into_inner();
            match out {
                // `deleted` stays the path asked for; `folders` lists all that went, deepest first.
                Format::Json => output::json(&json!({"deleted": path, "folders": r.deleted})),
                Format::Table => {
                    for p in &r.deleted {
                        println!("deleted folder {p}");
                    }
                }
            }
        }
        FolderCmd::Rename { path, new_name } => {
            let f = c
                .rename_folder(RenameFolderRequest {
                    path: path.clone(),
                    new_name,
                    request_id: request_id(),
                })
                .await?
                .into_inner();
            match out {
                Format::Json => output::json(&folder_json(&f)),
                Format::Table => println!("renamed folder {path} to {}", f.path),
            }
        }
        FolderCmd::Move { path, new_parent } => {
            let f = c
                .move_folder(MoveFolderRequest {
                    path: path.clone(),
                    new_parent,
                    request_id: request_id(),
                })
                .await?
                .into_inner();
            match out {
                Format::Json => output::json(&folder_json(&f)),
                Format::Table => println!("moved folder {path} to {}", f.path),
            }
        }
    }
    Ok(())
}
