//! The OpenSearch distribution a real node runs: the integ-test zip from Maven Central, fetched
//! once with Maven into the project's cache and unpacked there, and a JDK it runs on.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::engine::Engine;
use crate::Error;

const MAVEN_ARTIFACT: &str = "org.opensearch.distribution.integ-test-zip:opensearch";

/// The cache folder: `OSSNAP_CACHE_DIR`, else `.cache` at the workspace root (git-ignored).
fn cache_dir() -> PathBuf {
    std::env::var_os("OSSNAP_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache"))
}

/// `<cache>/opensearch-<version>`, unpacked; fetched and unpacked first when missing. Safe when
/// several stacks start at once: each unpacks into a folder of its own and renames it into place.
pub(crate) fn installed_home(version: &str) -> Result<PathBuf, Error> {
    let cache = cache_dir();
    let home = cache.join(format!("opensearch-{version}"));
    if home.join("bin/opensearch").is_file() {
        return Ok(home);
    }
    let scratch = cache.join(format!(".unpacking-{version}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|source| Error::DataDir {
        path: scratch.clone(),
        source,
    })?;
    let result = fetch_and_unpack(version, &scratch).and_then(|unpacked| {
        match std::fs::rename(&unpacked, &home) {
            Ok(()) => Ok(()),
            // Another stack finished first; its copy is as good as ours.
            Err(_) if home.join("bin/opensearch").is_file() => Ok(()),
            Err(source) => Err(Error::DataDir {
                path: home.clone(),
                source,
            }),
        }
    });
    let _ = std::fs::remove_dir_all(&scratch);
    result.map(|()| home)
}

fn fetch_and_unpack(version: &str, scratch: &Path) -> Result<PathBuf, Error> {
    let artifact = format!("{MAVEN_ARTIFACT}:{version}:zip");
    run(
        Command::new("mvn")
            .args(["-q", "-B", "dependency:copy"])
            .arg(format!("-Dartifact={artifact}"))
            .arg(format!("-DoutputDirectory={}", scratch.display()))
            .current_dir(scratch),
        &format!(
            "fetching {artifact} with Maven (is `mvn` installed and Maven Central reachable?)"
        ),
    )?;
    let zip = scratch.join(format!("opensearch-{version}.zip"));
    run(
        Command::new("unzip")
            .arg("-q")
            .arg(&zip)
            .arg("-d")
            .arg(scratch),
        &format!("unpacking {} (is `unzip` installed?)", zip.display()),
    )?;
    Ok(scratch.join(format!("opensearch-{version}")))
}

fn run(command: &mut Command, what: &str) -> Result<(), Error> {
    let output = command.output().map_err(|error| Error::RealNode {
        reason: format!("{what}: {error}"),
    })?;
    if output.status.success() {
        return Ok(());
    }
    Err(Error::RealNode {
        reason: format!(
            "{what}: {}\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}

/// A JDK for `engine`: the newest under `/usr/lib/jvm` (or `OSSNAP_JVM_DIR`) whose feature release
/// the engine runs on.
pub(crate) fn java_home(engine: Engine) -> Result<PathBuf, Error> {
    let jvm_dir = std::env::var_os("OSSNAP_JVM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/jvm"));
    java_home_in(engine, &jvm_dir)
}

fn java_home_in(engine: Engine, jvm_dir: &Path) -> Result<PathBuf, Error> {
    let (oldest, newest) = engine.java_releases();
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir(jvm_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        // Debian's alternatives links (java-1.17.0-openjdk-amd64) name the same JDK twice.
        .filter(|path| !path.is_symlink() && path.join("bin/java").is_file())
        .filter_map(|path| Some((feature_release(&path)?, path)))
        .filter(|(release, _)| (oldest..=newest).contains(release))
        .collect();
    candidates.sort();
    candidates.pop().map(|(_, path)| path).ok_or_else(|| {
        let wanted = if newest == u32::MAX {
            format!("{oldest} or newer")
        } else {
            format!("{oldest} to {newest}")
        };
        Error::RealNode {
            reason: format!(
                "{engine} needs a JDK of Java {wanted} under {}: install one (e.g. `apt-get install openjdk-{oldest}-jdk-headless`) or set OSSNAP_JVM_DIR",
                jvm_dir.display()
            ),
        }
    })
}

/// The feature release (17 of "17.0.15") from a JDK's `release` file.
fn feature_release(jdk: &Path) -> Option<u32> {
    let release = std::fs::read_to_string(jdk.join("release")).ok()?;
    let line = release
        .lines()
        .find_map(|line| line.strip_prefix("JAVA_VERSION="))?;
    let version = line.trim_matches('"');
    let feature = version.split(['.', '+', '-']).next()?;
    // Java 8 and older call themselves 1.8.
    match feature.parse().ok()? {
        1 => version.split('.').nth(1)?.parse().ok(),
        release => Some(release),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jdk(root: &Path, name: &str, version: &str) {
        let home = root.join(name);
        std::fs::create_dir_all(home.join("bin")).unwrap();
        std::fs::write(home.join("bin/java"), "").unwrap();
        std::fs::write(
            home.join("release"),
            format!("JAVA_VERSION=\"{version}\"\n"),
        )
        .unwrap();
    }

    #[test]
    fn each_engine_gets_the_newest_jdk_it_runs_on() {
        let root = tempfile::tempdir().unwrap();
        jdk(root.path(), "java-8", "1.8.0_402");
        jdk(root.path(), "java-17", "17.0.15");
        jdk(root.path(), "temurin-25", "25.0.1");
        assert_eq!(feature_release(&root.path().join("java-8")), Some(8));
        assert_eq!(
            java_home_in(Engine::OpenSearch2, root.path()).unwrap(),
            root.path().join("java-17")
        );
        assert_eq!(
            java_home_in(Engine::OpenSearch3, root.path()).unwrap(),
            root.path().join("temurin-25")
        );
        std::fs::remove_dir_all(root.path().join("temurin-25")).unwrap();
        let error = java_home_in(Engine::OpenSearch3, root.path())
            .unwrap_err()
            .to_string();
        assert!(error.contains("Java 21 or newer"), "{error}");
    }
}
