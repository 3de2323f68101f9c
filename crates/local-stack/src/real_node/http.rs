//! Requests to a real node over loopback (health checks, seeding): hyper's HTTP/1 client on one
//! connection per request, no authentication (the integ-test distribution has no security).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// One request; `Err` carries what went wrong in words.
pub(crate) async fn request(
    address: SocketAddr,
    method: http::Method,
    path: &str,
    body: Option<(&str, Bytes)>,
) -> Result<(u16, Bytes), String> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|error| format!("connecting to {address}: {error}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|error| format!("HTTP handshake with {address}: {error}"))?;
        tokio::spawn(connection);
        let mut builder = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, address.to_string());
        let payload = match body {
            Some((content_type, payload)) => {
                builder = builder.header(http::header::CONTENT_TYPE, content_type);
                payload
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(payload))
            .map_err(|error| format!("building {path}: {error}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| format!("{path}: {error}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|error| format!("{path}: reading the answer: {error}"))?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .map_err(|_| format!("{path}: no answer within 60 s"))?
}
