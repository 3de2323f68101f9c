//! Request authentication: SigV4 (service `es`), HTTP basic, or none.
//!
//! SigV4 credentials come from a provider asked once per request, so that session credentials
//! rotated under a warm Lambda keep working; the signature covers the query string, the payload
//! hash (`x-amz-content-sha256`) and the session token.

use std::time::SystemTime;

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;

use crate::error::{Error, ErrorKind, Result};

/// The SigV4 signing name of Amazon OpenSearch Service domains.
pub const OPENSEARCH_SERVICE: &str = "es";

/// Signs requests with SigV4.
#[derive(Clone, Debug)]
pub struct SigV4Signer {
    credentials: SharedCredentialsProvider,
    region: String,
    service: String,
    payload_hash_header: bool,
}

impl SigV4Signer {
    /// A signer for an Amazon OpenSearch Service domain in `region`.
    pub fn for_opensearch(credentials: SharedCredentialsProvider, region: String) -> Self {
        SigV4Signer {
            credentials,
            region,
            service: OPENSEARCH_SERVICE.to_string(),
            payload_hash_header: true,
        }
    }

    /// A signer for another service, without the `x-amz-content-sha256` header: the shape of
    /// AWS's published SigV4 test suite.
    pub fn plain(credentials: SharedCredentialsProvider, region: &str, service: &str) -> Self {
        SigV4Signer {
            credentials,
            region: region.to_string(),
            service: service.to_string(),
            payload_hash_header: false,
        }
    }

    /// Adds the SigV4 headers to `request`, signed at `time`.
    pub async fn sign(&self, request: &mut http::Request<Vec<u8>>, time: SystemTime) -> Result<()> {
        let credentials = self.credentials.provide_credentials().await.map_err(|e| {
            Error::new(
                ErrorKind::AuthError,
                format!(
                    "no AWS credentials to sign the request with: {e}; in Lambda they come from the function's role, locally from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile"
                ),
            )
        })?;
        let identity = credentials.into();
        let mut settings = SigningSettings::default();
        if self.payload_hash_header {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.service)
            .time(time)
            .settings(settings)
            .build()
            .map_err(|e| Error::config(format!("cannot build SigV4 parameters: {e}")))?
            .into();
        let uri = request.uri().to_string();
        let signable = SignableRequest::new(
            request.method().as_str(),
            &uri,
            request
                .headers()
                .iter()
                .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?))),
            SignableBody::Bytes(request.body()),
        )
        .map_err(|e| Error::config(format!("cannot sign the request to {uri}: {e}")))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| Error::config(format!("cannot sign the request to {uri}: {e}")))?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        // Keeps them out of any debug output of the request.
        for name in [http::header::AUTHORIZATION.as_str(), "x-amz-security-token"] {
            if let Some(value) = request.headers_mut().get_mut(name) {
                value.set_sensitive(true);
            }
        }
        Ok(())
    }
}

/// How requests to the domain are authenticated.
#[derive(Clone)]
pub enum Auth {
    SigV4(SigV4Signer),
    Basic { username: String, password: String },
    None,
}

impl std::fmt::Debug for Auth {
    // Never print the password, even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::SigV4(signer) => f
                .debug_struct("SigV4")
                .field("region", &signer.region)
                .field("service", &signer.service)
                .finish(),
            Auth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .finish_non_exhaustive(),
            Auth::None => f.write_str("None"),
        }
    }
}

impl Auth {
    pub(crate) async fn apply(
        &self,
        request: &mut http::Request<Vec<u8>>,
        time: SystemTime,
    ) -> Result<()> {
        match self {
            Auth::SigV4(signer) => signer.sign(request, time).await,
            Auth::Basic { username, password } => {
                let token = base64_encode(format!("{username}:{password}").as_bytes());
                let mut value = http::HeaderValue::from_str(&format!("Basic {token}"))
                    .map_err(|_| Error::config("the basic-auth user name or password holds characters a header cannot carry"))?;
                value.set_sensitive(true);
                request
                    .headers_mut()
                    .insert(http::header::AUTHORIZATION, value);
                Ok(())
            }
            Auth::None => Ok(()),
        }
    }
}

fn base64_encode(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> shift & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use std::time::{Duration, UNIX_EPOCH};

    /// 2015-08-30T12:36:00Z, the time of AWS's SigV4 test suite.
    fn suite_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn suite_signer() -> SigV4Signer {
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test-suite",
        );
        SigV4Signer::plain(
            SharedCredentialsProvider::new(credentials),
            "us-east-1",
            "service",
        )
    }

    async fn authorization(method: &str, uri: &str, headers: &[(&str, &str)]) -> String {
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder.body(Vec::new()).unwrap();
        suite_signer()
            .sign(&mut request, suite_time())
            .await
            .unwrap();
        assert_eq!(request.headers()["x-amz-date"], "20150830T123600Z");
        request.headers()["authorization"]
            .to_str()
            .unwrap()
            .to_string()
    }

    const SCOPE: &str =
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";

    // Vectors from AWS's SigV4 test suite (docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html).
    #[tokio::test]
    async fn get_vanilla() {
        assert_eq!(
            authorization("GET", "https://example.amazonaws.com/", &[]).await,
            format!("{SCOPE}, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        );
    }

    #[tokio::test]
    async fn get_vanilla_query_order_key_case() {
        assert_eq!(
            authorization("GET", "https://example.amazonaws.com/?Param2=value2&Param1=value1", &[]).await,
            format!("{SCOPE}, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
        );
    }

    #[tokio::test]
    async fn post_vanilla() {
        assert_eq!(
            authorization("POST", "https://example.amazonaws.com/", &[]).await,
            format!("{SCOPE}, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")
        );
    }

    #[tokio::test]
    async fn post_header_value_case() {
        assert_eq!(
            authorization("POST", "https://example.amazonaws.com/", &[("My-Header1", "VALUE1")]).await,
            format!("{SCOPE}, SignedHeaders=host;my-header1;x-amz-date, Signature=cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d")
        );
    }

    #[tokio::test]
    async fn opensearch_signing_covers_payload_hash_and_session_token() {
        let credentials = Credentials::new("AKID", "SECRET", Some("TOKEN".into()), None, "t");
        let signer = SigV4Signer::for_opensearch(
            SharedCredentialsProvider::new(credentials),
            "eu-west-1".into(),
        );
        let mut request = http::Request::builder()
            .method("PUT")
            .uri("https://search.example.com/_snapshot/r/s?wait_for_completion=false")
            .body(b"{}".to_vec())
            .unwrap();
        signer.sign(&mut request, suite_time()).await.unwrap();
        let headers = request.headers();
        let authorization = headers["authorization"].to_str().unwrap();
        assert!(
            authorization.contains("/eu-west-1/es/aws4_request"),
            "{authorization}"
        );
        assert!(
            authorization.contains(
                "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token"
            ),
            "{authorization}"
        );
        assert_eq!(
            headers["x-amz-content-sha256"],
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(headers["x-amz-security-token"], "TOKEN");
        assert!(headers["authorization"].is_sensitive());
    }

    #[test]
    fn base64_matches_rfc4648() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("admin:secret", "YWRtaW46c2VjcmV0"),
        ] {
            assert_eq!(base64_encode(input.as_bytes()), output);
        }
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let auth = Auth::Basic {
            username: "admin".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{auth:?}").contains("hunter2"));
    }
}
