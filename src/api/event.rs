//! `quantix.v1.EventService`.

use crate::cluster::Host;
use crate::proto::v1::event_service_server::EventService;

#[allow(dead_code)] // the stub until its service is filled in
pub struct EventApi {
    pub host: Host,
}

#[tonic::async_trait]
impl EventService for EventApi {}
