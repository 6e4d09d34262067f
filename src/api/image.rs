//! `quantix.v1.ImageService`.

use crate::cluster::Host;
use crate::proto::v1::image_service_server::ImageService;

#[allow(dead_code)] // the stub until its service is filled in
pub struct ImageApi {
    pub host: Host,
}

#[tonic::async_trait]
impl ImageService for ImageApi {}
