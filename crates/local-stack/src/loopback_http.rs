//! Requests from the stack to the processes it runs on loopback (a real node's health checks and
//! seeding, Azurite's blob service): hyper's HTTP/1 client on one connection per request.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// How long one exchange may take before it counts as unanswered.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends `request` (its URI a path and query) to `address`, with a `Host` header; `Err` carries
/// what went wrong in words.
pub(crate) async fn send(
    address: SocketAddr,
    mut request: http::Request<Bytes>,
) -> Result<http::Response<Bytes>, String> {
    let path = request.uri().path().to_owned();
    request.headers_mut().insert(
        http::header::HOST,
        http::HeaderValue::from_str(&address.to_string()).expect("an address is a valid header"),
    );
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|error| format!("connecting to {address}: {error}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|error| format!("HTTP handshake with {address}: {error}"))?;
        tokio::spawn(connection);
        let response = sender
            .send_request(request.map(Full::new))
            .await
            .map_err(|error| format!("{path}: {error}"))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|error| format!("{path}: reading the answer: {error}"))?
            .to_bytes();
        Ok(http::Response::from_parts(parts, body))
    };
    tokio::time::timeout(ANSWER_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("{path}: no answer within {} s", ANSWER_TIMEOUT.as_secs()))?
}

/// One request with an optional body of the given content type; the status and body.
pub(crate) async fn request(
    address: SocketAddr,
    method: http::Method,
    path: &str,
    body: Option<(&str, Bytes)>,
) -> Result<(u16, Bytes), String> {
    let mut builder = http::Request::builder().method(method).uri(path);
    let payload = match body {
        Some((content_type, payload)) => {
            builder = builder.header(http::header::CONTENT_TYPE, content_type);
            payload
        }
        None => Bytes::new(),
    };
    let request = builder
        .body(payload)
        .map_err(|error| format!("building {path}: {error}"))?;
    let response = send(address, request).await?;
    Ok((response.status().as_u16(), response.into_body()))
}
