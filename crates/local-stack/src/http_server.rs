//! Serving a hyper service on 127.0.0.1 with graceful shutdown; shared by the S3 and OpenSearch
//! servers.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::opensearch::{Emulator, ResetConnection};
use crate::Error;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long shutdown waits for in-flight requests before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub(crate) struct RunningServer {
    pub address: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RunningServer {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

pub(crate) async fn bind(what: &'static str, port: u16) -> Result<TcpListener, Error> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .map_err(|source| Error::Bind { what, port, source })
}

/// Accepts connections until stopped; `make_service` builds the per-connection service from the
/// peer address.
pub(crate) fn spawn<F, S, B>(listener: TcpListener, make_service: F) -> Result<RunningServer, Error>
where
    F: Fn(SocketAddr) -> S + Send + 'static,
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>>
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let address = listener.local_addr().map_err(|source| Error::Bind {
        what: "listener",
        port: 0,
        source,
    })?;
    let (stop, mut stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let graceful = GracefulShutdown::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((socket, peer)) = accepted else { continue };
                    let connection = http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), make_service(peer));
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                }
                _ = &mut stopped => break,
            }
        }
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
    });
    Ok(RunningServer {
        address,
        stop,
        task,
    })
}

pub(crate) async fn serve_opensearch(
    emulator: Arc<Emulator>,
    port: u16,
) -> Result<RunningServer, Error> {
    let listener = bind("OpenSearch emulator", port).await?;
    spawn(listener, move |peer| {
        let emulator = emulator.clone();
        hyper::service::service_fn(move |request| {
            let emulator = emulator.clone();
            async move {
                let response = emulator.handle(peer, request).await;
                // An error from the service makes hyper drop the connection unanswered.
                match response.extensions().get::<ResetConnection>() {
                    Some(reset) => Err(*reset),
                    None => Ok(response),
                }
            }
        })
    })
}
