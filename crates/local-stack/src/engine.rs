//! Which OpenSearch the local stack serves: the embedded emulator, or a real node of a pinned
//! version. The versions are pinned here and nowhere else.

use std::fmt;
use std::str::FromStr;

/// The newest 2.19.x published as an integ-test zip; 2.x keeps the Java Security Manager, which
/// JDK 24 removed, so it runs on Java 11 to 23.
pub const OPENSEARCH_2_VERSION: &str = "2.19.6";
/// The newest 3.x published as an integ-test zip; 3.x needs Java 21 or newer.
pub const OPENSEARCH_3_VERSION: &str = "3.8.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// The in-process emulator of Amazon OpenSearch Service's snapshot API (SigV4, FGAC, faults).
    #[default]
    Emulator,
    /// A real OpenSearch 2.x node ([`OPENSEARCH_2_VERSION`]).
    OpenSearch2,
    /// A real OpenSearch 3.x node ([`OPENSEARCH_3_VERSION`]).
    OpenSearch3,
}

impl Engine {
    pub const ALL: [Engine; 3] = [Engine::Emulator, Engine::OpenSearch2, Engine::OpenSearch3];

    pub const fn name(self) -> &'static str {
        match self {
            Engine::Emulator => "emulator",
            Engine::OpenSearch2 => "opensearch-2",
            Engine::OpenSearch3 => "opensearch-3",
        }
    }

    /// The OpenSearch version a real engine runs; `None` for the emulator.
    pub const fn version(self) -> Option<&'static str> {
        match self {
            Engine::Emulator => None,
            Engine::OpenSearch2 => Some(OPENSEARCH_2_VERSION),
            Engine::OpenSearch3 => Some(OPENSEARCH_3_VERSION),
        }
    }

    /// The Java feature releases the engine runs on, inclusive.
    pub(crate) const fn java_releases(self) -> (u32, u32) {
        match self {
            Engine::Emulator => (0, 0),
            Engine::OpenSearch2 => (11, 23),
            Engine::OpenSearch3 => (21, u32::MAX),
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Engine {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Engine::ALL
            .into_iter()
            .find(|engine| engine.name() == name)
            .ok_or_else(|| {
                format!("unknown engine {name:?}: use emulator, opensearch-2 or opensearch-3")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for engine in Engine::ALL {
            assert_eq!(engine.name().parse::<Engine>(), Ok(engine));
        }
        assert!("opensearch"
            .parse::<Engine>()
            .unwrap_err()
            .contains("opensearch-2"));
    }
}
