//! OpenSearch refuses to run as root. When the stack runs as root (as CI does), the node runs as
//! an unprivileged system user the stack creates once, and gets the folders it writes to.

use std::path::Path;
use std::process::Command;

use crate::Error;

const USER: &str = "ossnap-opensearch";

/// The uid and gid to run the node as: `None` when this process is not root (the node then runs
/// as the current user).
pub(crate) fn unprivileged_ids() -> Result<Option<(u32, u32)>, Error> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    if lookup().is_none() {
        let output = Command::new("useradd")
            .args(["--system", "--user-group", "--no-create-home"])
            .args(["--shell", "/usr/sbin/nologin", USER])
            .output()
            .map_err(|error| failure(format!("useradd: {error}")))?;
        // Another stack may have created it meanwhile; only a user still missing is a failure.
        if !output.status.success() && lookup().is_none() {
            return Err(failure(format!(
                "useradd {USER}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
    }
    lookup()
        .map(Some)
        .ok_or_else(|| failure(format!("user {USER} was created but cannot be found")))
}

fn lookup() -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let output = Command::new("id").arg(flag).arg(USER).output().ok()?;
        output.status.success().then_some(())?;
        String::from_utf8_lossy(&output.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

/// Gives the node's user `path` and everything below it.
pub(crate) fn hand_over(path: &Path, (uid, gid): (u32, u32)) -> Result<(), Error> {
    let output = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(path)
        .output()
        .map_err(|error| failure(format!("chown {}: {error}", path.display())))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(failure(format!(
            "chown {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Lets the node's user pass through `path` (a temporary folder is 0700).
pub(crate) fn make_traversable(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|source| Error::DataDir {
            path: path.to_path_buf(),
            source,
        })?
        .permissions()
        .mode();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | 0o011)).map_err(
        |source| Error::DataDir {
            path: path.to_path_buf(),
            source,
        },
    )
}

fn failure(reason: String) -> Error {
    Error::RealNode {
        reason: format!("running OpenSearch as an unprivileged user: {reason}"),
    }
}
