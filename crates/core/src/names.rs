//! Validation of everything ossnap puts in a request, before any request is sent.
//!
//! Snapshot and repository names follow OpenSearch's `SnapshotsService.validate()` (same checks,
//! same wording) plus ossnap's stricter rules: ASCII only, and no leading `-` or `+`, which
//! multi-name GET and DELETE expressions read as exclusions.

use crate::error::{Error, Result};

const OPENSEARCH_INVALID_CHARS: &[char] = &['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ','];
/// OpenSearch puts no bound on names; S3 keys and log lines are happier with one.
const MAX_NAME_BYTES: usize = 255;

/// Checks a snapshot name; `what` is "snapshot" or "repository" for the message.
fn validate_name(what: &str, name: &str) -> Result<()> {
    let invalid = |reason: &str| {
        Err(Error::config(format!(
            "invalid {what} name [{name}]: {reason}"
        )))
    };
    if name.is_empty() {
        return invalid("cannot be empty");
    }
    if name.chars().any(char::is_whitespace) {
        return invalid("must not contain whitespace");
    }
    if name.contains(',') {
        return invalid("must not contain ','");
    }
    if name.contains('#') {
        return invalid("must not contain '#'");
    }
    if name.starts_with('_') {
        return invalid("must not start with '_'");
    }
    if name.to_lowercase() != name {
        return invalid("must be lowercase");
    }
    if name.contains(OPENSEARCH_INVALID_CHARS) {
        return invalid(
            "must not contain the following characters [\\, /, *, ?, \", <, >, |, ' ', ',']",
        );
    }
    if !name.is_ascii() {
        return invalid("must be ASCII");
    }
    if name.starts_with('-') || name.starts_with('+') {
        return invalid(
            "must not start with '-' or '+' (they read as exclusions in multi-name requests)",
        );
    }
    if name.len() > MAX_NAME_BYTES {
        return invalid("must be at most 255 bytes long");
    }
    Ok(())
}

pub fn validate_snapshot_name(name: &str) -> Result<()> {
    validate_name("snapshot", name)
}

/// Repository names follow the snapshot rules; Amazon OpenSearch Service also reserves `cs-`
/// for its automated repositories.
pub fn validate_repository_name(name: &str) -> Result<()> {
    validate_name("repository", name)?;
    if name.starts_with("cs-") {
        return Err(Error::config(format!(
            "invalid repository name [{name}]: names starting with \"cs-\" are reserved for Amazon OpenSearch Service's automated snapshots; choose another SNAPSHOT_REPOSITORY"
        )));
    }
    Ok(())
}

/// An index name as OpenSearch accepts it (`MetadataCreateIndexService.validateIndexName`).
pub fn validate_index_name(name: &str) -> Result<()> {
    let invalid = |reason: &str| {
        Err(Error::config(format!(
            "invalid index name [{name}]: {reason}"
        )))
    };
    if name.is_empty() {
        return invalid("cannot be empty");
    }
    if name.to_lowercase() != name {
        return invalid("must be lowercase");
    }
    if name.starts_with(['_', '-', '+']) {
        return invalid("must not start with '_', '-', or '+'");
    }
    if name == "." || name == ".." {
        return invalid("must not be '.' or '..'");
    }
    if name.contains(['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',', '#', ':']) {
        return invalid(
            "must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?, #, :]",
        );
    }
    if name.len() > MAX_NAME_BYTES {
        return invalid("must be at most 255 bytes long");
    }
    Ok(())
}

/// An IAM role ARN: `arn:<partition>:iam::<12-digit account>:role/<path/name>`.
pub fn validate_role_arn(arn: &str) -> Result<()> {
    let invalid = |reason: &str| {
        Err(Error::config(format!(
            "invalid SNAPSHOT_ROLE_ARN [{arn}]: {reason}; expected arn:aws:iam::123456789012:role/TheSnapshotRole"
        )))
    };
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return invalid("not an IAM ARN");
    };
    if !matches!(
        partition,
        "aws" | "aws-cn" | "aws-us-gov" | "aws-iso" | "aws-iso-b"
    ) {
        return invalid("unknown partition");
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return invalid("the account must be 12 digits");
    }
    let Some(role) = resource.strip_prefix("role/") else {
        return invalid("not a role (a user or other resource cannot be assumed by OpenSearch)");
    };
    let name = role.rsplit('/').next().unwrap_or_default();
    let valid_char = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c);
    if name.is_empty() || name.len() > 64 || !role.chars().all(valid_char) {
        return invalid("the role name is not valid");
    }
    Ok(())
}

/// S3 general-purpose bucket naming rules.
pub fn validate_bucket_name(bucket: &str) -> Result<()> {
    let invalid = |reason: &str| {
        Err(Error::config(format!(
            "invalid SNAPSHOT_BUCKET [{bucket}]: {reason}"
        )))
    };
    if !(3..=63).contains(&bucket.len()) {
        return invalid("must be 3 to 63 characters long");
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return invalid("may hold only lowercase letters, digits, '.' and '-'");
    }
    let first_and_last_alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !first_and_last_alphanumeric(bucket.as_bytes()[0])
        || !first_and_last_alphanumeric(bucket.as_bytes()[bucket.len() - 1])
    {
        return invalid("must begin and end with a letter or digit");
    }
    if bucket.contains("..") {
        return invalid("must not contain two adjacent periods");
    }
    if bucket.parse::<std::net::Ipv4Addr>().is_ok() {
        return invalid("must not be formatted as an IP address");
    }
    if bucket.starts_with("xn--") || bucket.starts_with("sthree-") {
        return invalid("must not start with a reserved prefix (xn--, sthree-)");
    }
    if bucket.ends_with("-s3alias") || bucket.ends_with("--ol-s3") {
        return invalid("must not end with a reserved suffix (-s3alias, --ol-s3)");
    }
    Ok(())
}

/// The folder of an `fs` repository: absolute (OpenSearch resolves a relative one against its
/// first `path.repo` entry, which the caller cannot see), without `.`/`..` segments.
pub fn validate_fs_location(location: &str) -> Result<()> {
    let invalid = |reason: &str| {
        Err(Error::config(format!(
            "invalid SNAPSHOT_LOCATION [{location}]: {reason}"
        )))
    };
    if !location.starts_with('/') {
        return invalid("must be an absolute path under one of the cluster's path.repo folders");
    }
    if location
        .split('/')
        .any(|segment| segment == ".." || segment == ".")
    {
        return invalid("must not contain '.' or '..' segments");
    }
    if location.chars().any(|c| c.is_control()) {
        return invalid("must not contain control characters");
    }
    Ok(())
}

/// Azure Blob Storage container naming rules.
pub fn validate_azure_container(container: &str) -> Result<()> {
    let invalid = |reason: &str| {
        Err(Error::config(format!(
            "invalid AZURE_STORAGE_CONTAINER [{container}]: {reason}"
        )))
    };
    if !(3..=63).contains(&container.len()) {
        return invalid("must be 3 to 63 characters long");
    }
    if !container
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return invalid("may hold only lowercase letters, digits and '-'");
    }
    if container.starts_with('-') || container.ends_with('-') || container.contains("--") {
        return invalid("must begin and end with a letter or digit, with no '--'");
    }
    Ok(())
}

/// A key prefix inside the bucket: relative, no `..` segments, no empty segments.
pub fn validate_base_path(base_path: &str) -> Result<()> {
    let invalid = |reason: &str| {
        Err(Error::config(format!(
            "invalid SNAPSHOT_BASE_PATH [{base_path}]: {reason}"
        )))
    };
    if base_path.starts_with('/') {
        return invalid(
            "must not start with '/' (write it relative to the bucket, e.g. prod/domain-a)",
        );
    }
    if base_path.ends_with('/') {
        return invalid("must not end with '/'");
    }
    if base_path
        .split('/')
        .any(|segment| segment == ".." || segment == ".")
    {
        return invalid("must not contain '.' or '..' segments");
    }
    if base_path.split('/').any(str::is_empty) {
        return invalid("must not contain empty segments ('//')");
    }
    if base_path.chars().any(|c| c.is_control()) {
        return invalid("must not contain control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(result: Result<()>) -> String {
        result.unwrap_err().message().to_string()
    }

    #[test]
    fn snapshot_names_follow_opensearch_rules_with_its_wording() {
        for (name, why) in [
            ("", "cannot be empty"),
            ("a b", "must not contain whitespace"),
            ("a,b", "must not contain ','"),
            ("a#b", "must not contain '#'"),
            ("_x", "must not start with '_'"),
            ("Daily", "must be lowercase"),
            ("x/y", "must not contain the following characters"),
            ("x*", "must not contain the following characters"),
            ("x?", "must not contain the following characters"),
            ("x\"y", "must not contain the following characters"),
            ("x<y", "must not contain the following characters"),
            ("x>y", "must not contain the following characters"),
            ("x|y", "must not contain the following characters"),
            ("x\\y", "must not contain the following characters"),
        ] {
            let message = reason(validate_snapshot_name(name));
            assert!(message.contains(why), "{name:?}: {message}");
        }
    }

    #[test]
    fn snapshot_names_follow_ossnap_rules_too() {
        assert!(reason(validate_snapshot_name("-x")).contains("'-' or '+'"));
        assert!(reason(validate_snapshot_name("+x")).contains("'-' or '+'"));
        assert!(reason(validate_snapshot_name("café")).contains("ASCII"));
        assert!(reason(validate_snapshot_name("Ä")).contains("lowercase"));
        assert!(reason(validate_snapshot_name(&"a".repeat(256))).contains("255"));
        validate_snapshot_name(&"a".repeat(255)).unwrap();
        validate_snapshot_name("ossnap-20261128-020000").unwrap();
        validate_snapshot_name("nightly-2025.01.31-0200z").unwrap();
    }

    #[test]
    fn repository_names_refuse_the_aws_reserved_prefix() {
        assert!(reason(validate_repository_name("cs-automated")).contains("reserved"));
        assert!(reason(validate_repository_name("")).contains("empty"));
        assert!(reason(validate_repository_name("_all")).contains("'_'"));
        assert!(reason(validate_repository_name("*")).contains("characters"));
        validate_repository_name("customer-backups").unwrap();
    }

    #[test]
    fn role_arns_must_be_iam_roles() {
        validate_role_arn("arn:aws:iam::123456789012:role/TheSnapshotRole").unwrap();
        validate_role_arn("arn:aws:iam::123456789012:role/service/ossnap-snapshot").unwrap();
        validate_role_arn("arn:aws-cn:iam::123456789012:role/r").unwrap();
        for bad in [
            "TheSnapshotRole",
            "arn:aws:iam::123:role/r",
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/has space",
            "arn:other:iam::123456789012:role/r",
        ] {
            assert!(validate_role_arn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        validate_bucket_name("acme-os-backups").unwrap();
        validate_bucket_name("a.b-c").unwrap();
        for bad in [
            "ab",
            "Acme",
            "-acme",
            "acme-",
            "a..b",
            "192.168.1.1",
            "xn--acme",
            "acme-s3alias",
            "acme_backups",
            &"a".repeat(64),
        ] {
            assert!(validate_bucket_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn base_paths_are_relative_and_never_climb() {
        validate_fs_location("/mnt/snapshots/prod").unwrap();
        for bad in ["relative/path", "/mnt/../etc", "/mnt/./x"] {
            assert!(validate_fs_location(bad).is_err(), "{bad}");
        }
        validate_azure_container("ossnap-local").unwrap();
        for bad in ["ab", "Upper", "a--b", "-ab", "ab-", "a_b"] {
            assert!(validate_azure_container(bad).is_err(), "{bad}");
        }
        validate_base_path("prod/domain-a").unwrap();
        validate_base_path("snapshots").unwrap();
        for bad in ["/prod", "prod/../other", "..", "prod/", "a//b", "./a"] {
            assert!(validate_base_path(bad).is_err(), "{bad}");
        }
    }
}
