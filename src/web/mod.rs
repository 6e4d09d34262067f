//! The HTTP listener on `http_addr`: Prometheus metrics at `/metrics` and a liveness probe at
//! `/healthz`; the dashboard joins them here later. Owns: the process-wide metrics recorder.
//! May use: `cluster` (for Raft gauges read at scrape time).

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::future::Future;
use tokio::net::TcpListener;

use crate::cluster::Host;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("metrics recorder: {0}")]
    Metrics(String),
    #[error("http server: {0}")]
    Serve(#[from] std::io::Error),
}

/// Installs the global metrics recorder (once per process); every metric carries `host`.
pub fn install_metrics(host_name: &str) -> Result<PrometheusHandle, WebError> {
    PrometheusBuilder::new()
        .add_global_label("host", host_name)
        .set_buckets(&[
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])
        .map_err(|e| WebError::Metrics(e.to_string()))?
        .install_recorder()
        .map_err(|e| WebError::Metrics(e.to_string()))
}

#[derive(Clone)]
struct AppState {
    host: Host,
    metrics: PrometheusHandle,
}

/// Serves until `shutdown` resolves. The caller binds the listener (tests use port 0).
pub async fn serve(
    listener: TcpListener,
    host: Host,
    metrics: PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WebError> {
    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(AppState { host, metrics });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// Raft gauges are read from openraft's metrics at scrape time, so they are never stale.
async fn render_metrics(State(s): State<AppState>) -> String {
    let m = s.host.raft().metrics().borrow().clone();
    let leader = m.current_leader == Some(s.host.id());
    metrics::gauge!("quantix_raft_term").set(m.current_term as f64);
    metrics::gauge!("quantix_raft_is_leader").set(if leader { 1.0 } else { 0.0 });
    metrics::gauge!("quantix_raft_last_log_index").set(m.last_log_index.unwrap_or(0) as f64);
    metrics::gauge!("quantix_raft_applied_index").set(m.last_applied.map_or(0, |l| l.index) as f64);
    metrics::gauge!("quantix_raft_snapshot_index").set(m.snapshot.map_or(0, |l| l.index) as f64);
    metrics::gauge!("quantix_raft_voters").set(m.membership_config.voter_ids().count() as f64);
    metrics::gauge!("quantix_raft_members").set(m.membership_config.nodes().count() as f64);
    if let Some(repl) = &m.replication {
        let last = m.last_log_index.unwrap_or(0);
        for (id, matched) in repl {
            let lag = last.saturating_sub(matched.map_or(0, |l| l.index));
            metrics::gauge!("quantix_raft_follower_lag_entries", "peer" => id.to_string())
                .set(lag as f64);
        }
    }
    s.metrics.render()
}
