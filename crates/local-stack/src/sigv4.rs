//! Verification of AWS Signature Version 4 (service `es`) as the Amazon OpenSearch Service front
//! door does it, written from the published algorithm: canonical request (method, URI encoded
//! again as for every service but S3, sorted query, signed headers, SHA-256 of the body), string
//! to sign, HMAC signing key chain. Refusals carry the front door's exact 403 messages.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::{Digest, Sha256};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use crate::errors::ApiError;
use crate::Credentials;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const AMZ_DATE: &[FormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");
const MAX_SKEW: Duration = Duration::minutes(5);
const INVALID_TOKEN: &str = "The security token included in the request is invalid.";

pub(crate) struct Request<'a> {
    pub method: &'a str,
    /// Path exactly as received (still percent-encoded).
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

pub(crate) struct Expected<'a> {
    pub credentials: &'a Credentials,
    pub region: &'a str,
    pub service: &'a str,
    pub now: OffsetDateTime,
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

struct Authorization<'a> {
    access_key_id: &'a str,
    scope_date: &'a str,
    scope_region: &'a str,
    scope_service: &'a str,
    scope_terminator: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn parse_authorization(header: &str) -> Result<Authorization<'_>, ApiError> {
    let Some(parameters) = header.strip_prefix(ALGORITHM) else {
        return Err(ApiError::aws_front_door(format!(
            "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={header}"
        )));
    };
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in parameters.split(',') {
        let part = part.trim();
        if let Some(value) = part.strip_prefix("Credential=") {
            credential = Some(value);
        } else if let Some(value) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(value);
        } else if let Some(value) = part.strip_prefix("Signature=") {
            signature = Some(value);
        }
    }
    let mut missing = String::new();
    for (name, value) in [
        ("Credential", credential.is_some()),
        ("Signature", signature.is_some()),
        ("SignedHeaders", signed_headers.is_some()),
    ] {
        if !value {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    if !missing.is_empty() {
        return Err(ApiError::aws_front_door(format!(
            "{missing}Authorization={header}"
        )));
    }
    let credential = credential.unwrap_or_default();
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 {
        return Err(ApiError::aws_front_door(format!(
            "Credential should be scoped to a valid region. Credential={credential}"
        )));
    }
    Ok(Authorization {
        access_key_id: scope[0],
        scope_date: scope[1],
        scope_region: scope[2],
        scope_service: scope[3],
        scope_terminator: scope[4],
        signed_headers: signed_headers.unwrap_or_default(),
        signature: signature.unwrap_or_default(),
    })
}

/// Every byte but the unreserved characters (and `/` in paths) as `%XX`, upper case.
fn uri_encode(input: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    for &byte in input.as_bytes() {
        if byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && byte == b'/')
        {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (
                uri_encode(&decode(key), false),
                uri_encode(&decode(value), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical_header_value(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all(name)
        .iter()
        .map(|value| {
            String::from_utf8_lossy(value.as_bytes())
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Checks the request's signature; the error is the exact response AWS would give.
pub(crate) fn verify(request: &Request<'_>, expected: &Expected<'_>) -> Result<(), ApiError> {
    let Some(authorization) = header(request.headers, "authorization") else {
        let action = format!(
            "es:ESHttp{}{}",
            &request.method[..1],
            request.method[1..].to_ascii_lowercase()
        );
        return Err(ApiError::iam_denied(format!(
            "User: anonymous is not authorized to perform: {action}"
        )));
    };
    let authorization = parse_authorization(authorization)?;
    if authorization.access_key_id != expected.credentials.access_key_id {
        return Err(ApiError::aws_front_door(INVALID_TOKEN));
    }
    let token = header(request.headers, "x-amz-security-token");
    if token != expected.credentials.session_token.as_deref() {
        return Err(ApiError::aws_front_door(INVALID_TOKEN));
    }
    let Some(amz_date) = header(request.headers, "x-amz-date") else {
        return Err(ApiError::aws_front_door(format!(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={}",
            header(request.headers, "authorization").unwrap_or_default()
        )));
    };
    let signed_at = PrimitiveDateTime::parse(amz_date, AMZ_DATE)
        .map_err(|_| {
            ApiError::aws_front_door(format!(
                "Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See http://en.wikipedia.org/wiki/ISO_8601"
            ))
        })?
        .assume_utc();
    let format = |moment: OffsetDateTime| moment.format(AMZ_DATE).unwrap_or_default();
    if signed_at < expected.now - MAX_SKEW {
        return Err(ApiError::aws_front_door(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 5 min.)",
            format(expected.now - MAX_SKEW),
            format(expected.now)
        )));
    }
    if signed_at > expected.now + MAX_SKEW {
        return Err(ApiError::aws_front_door(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 5 min.)",
            format(expected.now + MAX_SKEW),
            format(expected.now)
        )));
    }
    let date = &amz_date[..8];
    if authorization.scope_date != date {
        return Err(ApiError::aws_front_door(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{date}', from '{amz_date}'.",
            authorization.scope_date
        )));
    }
    if authorization.scope_region != expected.region {
        return Err(ApiError::aws_front_door(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            authorization.scope_region
        )));
    }
    if authorization.scope_service != expected.service
        || authorization.scope_terminator != "aws4_request"
    {
        return Err(ApiError::aws_front_door(format!(
            "Credential should be scoped to correct service: '{}'. ",
            expected.service
        )));
    }
    let payload_hash = sha256_hex(request.body);
    if let Some(claimed) = header(request.headers, "x-amz-content-sha256") {
        if claimed != payload_hash {
            return Err(ApiError::aws_front_door(
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
    }

    let canonical_headers: String = authorization
        .signed_headers
        .split(';')
        .map(|name| format!("{name}:{}\n", canonical_header_value(request.headers, name)))
        .collect();
    let path = if request.raw_path.is_empty() {
        "/"
    } else {
        request.raw_path
    };
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        uri_encode(path, true),
        canonical_query(request.raw_query),
        canonical_headers,
        authorization.signed_headers,
        payload_hash
    );
    let scope = format!(
        "{date}/{}/{}/aws4_request",
        expected.region, expected.service
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let mut key = hmac(
        format!("AWS4{}", expected.credentials.secret_access_key).as_bytes(),
        date,
    );
    for part in [expected.region, expected.service, "aws4_request"] {
        key = hmac(&key, part);
    }
    let signature = hex::encode(hmac(&key, &string_to_sign));
    if signature != authorization.signature {
        return Err(ApiError::aws_front_door(format!(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for this request should have been\n'{canonical_request}'\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use time::macros::datetime;

    /// The AWS SigV4 test suite's `get-vanilla-query-order-key-case` vector (service `service`).
    #[test]
    fn accepts_the_aws_test_suite_vector() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.amazonaws.com"));
        headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        headers.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            ),
        );
        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned(),
            session_token: None,
        };
        let request = Request {
            method: "GET",
            raw_path: "/",
            raw_query: "Param2=value2&Param1=value1",
            headers: &headers,
            body: b"",
        };
        let expected = Expected {
            credentials: &credentials,
            region: "us-east-1",
            service: "service",
            now: datetime!(2015-08-30 12:38:00 UTC),
        };
        verify(&request, &expected).unwrap();

        let tampered = Request {
            raw_query: "Param2=value2&Param1=value3",
            ..request
        };
        let refusal = verify(&tampered, &expected).unwrap_err();
        let message = refusal.body["message"].as_str().unwrap();
        assert!(message.starts_with("The request signature we calculated does not match"));
        assert!(
            message.contains("'GET\n/\nParam1=value3&Param2=value2\nhost:example.amazonaws.com\n")
        );

        let late = Expected {
            now: datetime!(2015-08-30 12:42:00 UTC),
            ..expected
        };
        let refusal = verify(&request, &late).unwrap_err();
        assert_eq!(
            refusal.body["message"],
            "Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z (20150830T124200Z - 5 min.)"
        );
    }

    #[test]
    fn paths_are_encoded_a_second_time() {
        assert_eq!(
            uri_encode("/_snapshot/r/%3Csnap%3E", true),
            "/_snapshot/r/%253Csnap%253E"
        );
        assert_eq!(canonical_query("b=2&a=x%2Cy&c"), "a=x%2Cy&b=2&c=");
    }
}
