//! `type: azure` repositories: blobs in a container of the stack's Azurite, read and written as
//! repository-azure does through the Azure SDK: Put Blob (block blob, one request), Get Blob,
//! List Blobs with the `/` delimiter (by prefix, in one folder) or without (a whole folder, to
//! delete it), and Delete Blob one by one. Requests are signed with the account's Shared Key by
//! object_store's `AzureAuthorizer`; nothing here logs a header or the key.

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Method};
use object_store::azure::{AzureAccessKey, AzureAuthorizer, AzureCredential};
use object_store::client::HttpRequestBody;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::{Blobs, Depth, StoreError};
use crate::AzureEndpoint;

/// The only client name a node of the stack has configured (`azure.client.default.*`).
pub(crate) const DEFAULT_CLIENT: &str = "default";

/// Path segments keep RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One storage account's Blob service on loopback.
#[derive(Clone)]
pub(crate) struct AzureClient {
    account: Arc<Account>,
}

struct Account {
    name: String,
    credential: AzureCredential,
    address: SocketAddr,
    /// The endpoint's path, `/devstoreaccount1` (Azurite's path-style URLs), or empty.
    path: String,
}

impl AzureClient {
    /// A client for `endpoint`, whose blob endpoint must be an `http://IP:PORT[/account]` URL.
    pub(crate) fn new(endpoint: &AzureEndpoint) -> Result<AzureClient, String> {
        let url = url::Url::parse(&endpoint.blob_endpoint)
            .map_err(|error| format!("blob endpoint {}: {error}", endpoint.blob_endpoint))?;
        let address = match (url.scheme(), url.host(), url.port()) {
            ("http", Some(url::Host::Ipv4(ip)), Some(port)) => SocketAddr::from((ip, port)),
            _ => {
                return Err(format!(
                    "blob endpoint {}: expected http://IP:PORT/ACCOUNT (the local stack reaches Azurite over plain HTTP on loopback)",
                    endpoint.blob_endpoint
                ))
            }
        };
        let key = AzureAccessKey::try_new(&endpoint.key)
            .map_err(|_| format!("the key of account {} is not base64", endpoint.account))?;
        Ok(AzureClient {
            account: Arc::new(Account {
                name: endpoint.account.clone(),
                credential: AzureCredential::AccessKey(key),
                address,
                path: url.path().trim_end_matches('/').to_owned(),
            }),
        })
    }

    pub(crate) fn container(&self, name: &str) -> Container {
        Container {
            client: self.clone(),
            name: name.to_owned(),
        }
    }

    /// Create Container; one that exists already is fine.
    pub(crate) async fn create_container(&self, name: &str) -> Result<(), StoreError> {
        let response = self
            .call(
                Method::PUT,
                &format!("/{}", encode(name)),
                &[("restype", "container")],
                &[],
                Bytes::new(),
            )
            .await?;
        match response.status().as_u16() {
            201 => Ok(()),
            409 if error_code(&response) == Some("ContainerAlreadyExists") => Ok(()),
            _ => Err(failure(response)),
        }
    }

    /// Sends one request signed with the account's key. `path` is below the account and
    /// already encoded.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(HeaderName, &str)],
        body: Bytes,
    ) -> Result<http::Response<Bytes>, StoreError> {
        let account = &self.account;
        let mut path_and_query = format!("{}{path}", account.path);
        if !query.is_empty() {
            path_and_query.push('?');
            path_and_query.push_str(
                &url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(query)
                    .finish(),
            );
        }
        // The authorizer signs an object_store request (it reads the method, the whole URL and
        // the headers, not the body); its headers then go on the request that is sent.
        let mut signed = http::Request::builder()
            .method(method.clone())
            .uri(format!("http://{}{path_and_query}", account.address))
            .body(HttpRequestBody::from(Bytes::new()))
            .map_err(not_sent)?;
        for (name, value) in headers {
            signed.headers_mut().insert(
                name.clone(),
                HeaderValue::from_str(value).map_err(not_sent)?,
            );
        }
        if !body.is_empty() {
            signed
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        AzureAuthorizer::new(&account.credential, &account.name)
            .try_authorize(&mut signed)
            .map_err(not_sent)?;
        let mut request = http::Request::builder()
            .method(method)
            .uri(path_and_query)
            .body(body)
            .map_err(not_sent)?;
        *request.headers_mut() = signed.into_parts().0.headers;
        crate::loopback_http::send(account.address, request)
            .await
            .map_err(|reason| StoreError::AzureUnreachable { reason })
    }
}

fn encode(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

/// A request that could not be built or signed, reported as one that got no answer.
fn not_sent(error: impl std::fmt::Display) -> StoreError {
    StoreError::AzureUnreachable {
        reason: error.to_string(),
    }
}

fn error_code(response: &http::Response<Bytes>) -> Option<&str> {
    response
        .headers()
        .get("x-ms-error-code")
        .and_then(|value| value.to_str().ok())
}

fn failure(response: http::Response<Bytes>) -> StoreError {
    StoreError::Azure {
        status: response.status().as_u16(),
        body: String::from_utf8_lossy(response.body()).into_owned(),
    }
}

/// One container of the account.
pub(crate) struct Container {
    client: AzureClient,
    name: String,
}

impl Container {
    fn blob_path(&self, key: &str) -> String {
        let mut path = format!("/{}", encode(&self.name));
        for segment in key.split('/') {
            path.push('/');
            path.push_str(&encode(segment));
        }
        path
    }
}

/// A `<Blob>`'s name in a List Blobs answer (never a `<BlobPrefix>`'s), and the marker of the
/// next page.
static BLOB_NAME: LazyLock<regex_lite::Regex> = LazyLock::new(|| {
    regex_lite::Regex::new(r"<Blob>\s*<Name>([^<]*)</Name>").expect("a valid pattern")
});
static NEXT_MARKER: LazyLock<regex_lite::Regex> = LazyLock::new(|| {
    regex_lite::Regex::new(r"<NextMarker>([^<]+)</NextMarker>").expect("a valid pattern")
});

fn unescape_xml(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[async_trait]
impl Blobs for Container {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        let response = self
            .client
            .call(
                Method::PUT,
                &self.blob_path(key),
                &[],
                &[
                    (HeaderName::from_static("x-ms-blob-type"), "BlockBlob"),
                    (header::CONTENT_TYPE, "application/octet-stream"),
                ],
                Bytes::from(bytes),
            )
            .await?;
        match response.status().as_u16() {
            201 => Ok(()),
            _ => Err(failure(response)),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let response = self
            .client
            .call(Method::GET, &self.blob_path(key), &[], &[], Bytes::new())
            .await?;
        match response.status().as_u16() {
            200 => Ok(Some(response.into_body().to_vec())),
            404 if error_code(&response) == Some("BlobNotFound") => Ok(None),
            _ => Err(failure(response)),
        }
    }

    async fn list(&self, prefix: &str, depth: Depth) -> Result<Vec<String>, StoreError> {
        let container = format!("/{}", encode(&self.name));
        let mut keys = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut query = vec![
                ("restype", "container"),
                ("comp", "list"),
                ("prefix", prefix),
            ];
            if let Depth::Folder = depth {
                query.push(("delimiter", "/"));
            }
            if let Some(marker) = &marker {
                query.push(("marker", marker));
            }
            let response = self
                .client
                .call(Method::GET, &container, &query, &[], Bytes::new())
                .await?;
            if response.status().as_u16() != 200 {
                return Err(failure(response));
            }
            let text = String::from_utf8_lossy(response.body());
            keys.extend(
                BLOB_NAME
                    .captures_iter(&text)
                    .map(|captures| unescape_xml(&captures[1])),
            );
            marker = NEXT_MARKER
                .captures(&text)
                .map(|captures| unescape_xml(&captures[1]));
            if marker.is_none() {
                return Ok(keys);
            }
        }
    }

    async fn delete(&self, keys: &[String]) -> Result<(), StoreError> {
        for key in keys {
            let response = self
                .client
                .call(Method::DELETE, &self.blob_path(key), &[], &[], Bytes::new())
                .await?;
            match response.status().as_u16() {
                202 => {}
                404 if error_code(&response) == Some("BlobNotFound") => {}
                _ => return Err(failure(response)),
            }
        }
        Ok(())
    }
}

/// A `client` the node has no settings for: every request fails before it is sent, as the
/// plugin's `AzureStorageService.client` refuses it.
pub(crate) struct MissingClient {
    client: String,
}

impl MissingClient {
    pub(crate) fn new(client: &str) -> Self {
        MissingClient {
            client: client.to_owned(),
        }
    }

    fn refuse<T>(&self) -> Result<T, StoreError> {
        Err(StoreError::AzureClientMissing {
            client: self.client.clone(),
        })
    }
}

#[async_trait]
impl Blobs for MissingClient {
    async fn put(&self, _key: &str, _bytes: Vec<u8>) -> Result<(), StoreError> {
        self.refuse()
    }

    async fn get(&self, _key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.refuse()
    }

    async fn list(&self, _prefix: &str, _depth: Depth) -> Result<Vec<String>, StoreError> {
        self.refuse()
    }

    async fn delete(&self, _keys: &[String]) -> Result<(), StoreError> {
        self.refuse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_names_are_read_from_blobs_only() {
        let page = "<EnumerationResults><Blobs><BlobPrefix><Name>base/indices/</Name></BlobPrefix>\
            <Blob><Name>base/index-0</Name><Properties/></Blob>\
            <Blob><Name>base/a&amp;b</Name></Blob></Blobs><NextMarker /></EnumerationResults>";
        let names: Vec<String> = BLOB_NAME
            .captures_iter(page)
            .map(|captures| unescape_xml(&captures[1]))
            .collect();
        assert_eq!(names, ["base/index-0", "base/a&b"]);
        assert!(NEXT_MARKER.captures(page).is_none());
        assert_eq!(
            &NEXT_MARKER
                .captures("<NextMarker>2!72!MDAw</NextMarker>")
                .unwrap()[1],
            "2!72!MDAw"
        );
    }

    #[test]
    fn keys_are_encoded_segment_by_segment() {
        let endpoint = AzureEndpoint {
            account: "devstoreaccount1".to_owned(),
            key: "a2V5".to_owned(),
            blob_endpoint: "http://127.0.0.1:10000/devstoreaccount1".to_owned(),
            container: "c".to_owned(),
        };
        let container = AzureClient::new(&endpoint).unwrap().container("c");
        assert_eq!(
            container.blob_path("base/indices/a b/__x"),
            "/c/base/indices/a%20b/__x"
        );
    }
}
