//! `quantix.v1.FolderService`.

use tonic::{Request, Response, Status};

use super::cluster::is_stale;
use super::status::to_status;
use crate::cluster::{ClusterError, Host};
use crate::model::{self, FolderPath};
use crate::proto::v1::folder_service_server::FolderService;
use crate::proto::v1::*;
use crate::state::folders::{self, FolderApplied, FolderCommand};
use crate::state::{Applied, Command};

pub struct FolderApi {
    pub host: Host,
}

fn to_proto(path: &FolderPath, f: &model::Folder) -> Folder {
    Folder {
        id: f.id.0,
        path: path.to_string(),
        name: f.name.clone(),
        parent: path
            .split_last()
            .map(|(p, _)| p.to_string())
            .unwrap_or_default(),
        created_at_ms: f.created_at,
    }
}

fn parse_path(field: &'static str, s: &str) -> Result<FolderPath, Status> {
    FolderPath::parse(field, s).map_err(|e| to_status(ClusterError::InvalidArgument(e.to_string())))
}

#[tonic::async_trait]
impl FolderService for FolderApi {
    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn create_folder(
        &self,
        req: Request<CreateFolderRequest>,
    ) -> Result<Response<Folder>, Status> {
        let r = req.into_inner();
        let path = parse_path("folder path", &r.path)?;
        let cmd = Command::CreateFolder {
            path: path.to_string(),
            parents: r.parents,
        };
        match self
            .host
            .write_ok(cmd, Some(r.request_id))
            .await
            .map_err(to_status)?
        {
            Applied::FoldersCreated(created) => {
                let (_, f) = created
                    .last()
                    .ok_or_else(|| unexpected(Applied::FoldersCreated(Vec::new())))?;
                Ok(Response::new(to_proto(&path, f)))
            }
            other => Err(to_status(ClusterError::internal(format!(
                "unexpected outcome {other:?}"
            )))),
        }
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn get_folder(&self, req: Request<GetFolderRequest>) -> Result<Response<Folder>, Status> {
        let r = req.into_inner();
        let path = parse_path("folder path", &r.path)?;
        self.host
            .read_barrier(is_stale(r.consistency))
            .await
            .map_err(to_status)?;
        let state = self.host.state().map_err(to_status)?;
        match folders::get(&state, &path).map_err(|e| to_status(ClusterError::internal(e)))? {
            Some(f) => Ok(Response::new(to_proto(&path, &f))),
            None => Err(to_status(ClusterError::NotFound(format!(
                "folder {path} does not exist"
            )))),
        }
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn list_folders(
        &self,
        req: Request<ListFoldersRequest>,
    ) -> Result<Response<ListFoldersResponse>, Status> {
        let r = req.into_inner();
        let under = if r.under.is_empty() {
            None
        } else {
            Some(parse_path("under", &r.under)?)
        };
        self.host
            .read_barrier(is_stale(r.consistency))
            .await
            .map_err(to_status)?;
        let state = self.host.state().map_err(to_status)?;
        let list = folders::list(&state, under.as_ref())
            .map_err(|e| to_status(ClusterError::internal(e)))?;
        if list.is_empty() {
            if let Some(u) = under {
                return Err(to_status(ClusterError::NotFound(format!(
                    "folder {u} does not exist"
                ))));
            }
        }
        Ok(Response::new(ListFoldersResponse {
            folders: list.iter().map(|(p, f)| to_proto(p, f)).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn delete_folder(
        &self,
        req: Request<DeleteFolderRequest>,
    ) -> Result<Response<DeleteFolderResponse>, Status> {
        let r = req.into_inner();
        let path = parse_path("folder path", &r.path)?.to_string();
        let cmd = if r.recursive {
            Command::Folder(FolderCommand::DeleteRecursive { path: path.clone() })
        } else {
            Command::DeleteFolder { path: path.clone() }
        };
        let deleted = match self
            .host
            .write_ok(cmd, Some(r.request_id))
            .await
            .map_err(to_status)?
        {
            Applied::FolderDeleted => vec![path],
            Applied::Folder(FolderApplied::TreeDeleted(paths)) => paths,
            other => return Err(unexpected(other)),
        };
        Ok(Response::new(DeleteFolderResponse { deleted }))
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn rename_folder(
        &self,
        req: Request<RenameFolderRequest>,
    ) -> Result<Response<Folder>, Status> {
        let r = req.into_inner();
        let path = parse_path("folder path", &r.path)?;
        if let Err(e) = model::folder::validate_segment("new folder name", &r.new_name, &r.new_name)
        {
            return Err(to_status(ClusterError::InvalidArgument(e.to_string())));
        }
        let cmd = Command::Folder(FolderCommand::Rename {
            path: path.to_string(),
            new_name: r.new_name,
        });
        match self
            .host
            .write_ok(cmd, Some(r.request_id))
            .await
            .map_err(to_status)?
        {
            Applied::Folder(FolderApplied::Renamed { path, folder }) => changed(&path, &folder),
            other => Err(unexpected(other)),
        }
    }

    #[tracing::instrument(skip_all, fields(host = %self.host.name()))]
    async fn move_folder(
        &self,
        req: Request<MoveFolderRequest>,
    ) -> Result<Response<Folder>, Status> {
        let r = req.into_inner();
        let path = parse_path("folder path", &r.path)?;
        let new_parent = parse_path("new parent folder", &r.new_parent)?;
        let cmd = Command::Folder(FolderCommand::Move {
            path: path.to_string(),
            new_parent: new_parent.to_string(),
        });
        match self
            .host
            .write_ok(cmd, Some(r.request_id))
            .await
            .map_err(to_status)?
        {
            Applied::Folder(FolderApplied::Moved { path, folder }) => changed(&path, &folder),
            other => Err(unexpected(other)),
        }
    }
}

/// The answer to a rename or move: the folder at its new path (which `apply` produced).
fn changed(path: &str, f: &model::Folder) -> Result<Response<Folder>, Status> {
    let path = parse_path("folder path", path)?;
    Ok(Response::new(to_proto(&path, f)))
}

fn unexpected(other: Applied) -> Status {
    to_status(ClusterError::internal(format!(
        "unexpected outcome {other:?}"
    )))
}
