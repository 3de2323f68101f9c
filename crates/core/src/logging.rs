//! The log subscriber every function installs first: the level from `AWS_LAMBDA_LOG_LEVEL` (or
//! `RUST_LOG`, a level name), JSON when Lambda's log format is JSON, no timestamps (CloudWatch
//! adds its own), and no target module names.

use tracing_subscriber::filter::LevelFilter;

use crate::config::Environment;

pub fn init(env: &Environment) {
    let level = level(env);
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .without_time()
        .with_ansi(false);
    let installed = if json(env) {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // A second init (in tests) keeps the first subscriber; nothing else can fail here.
    drop(installed);
}

fn level(env: &Environment) -> LevelFilter {
    env.get("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|| env.get("RUST_LOG"))
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(LevelFilter::INFO)
}

fn json(env: &Environment) -> bool {
    env.get("AWS_LAMBDA_LOG_FORMAT")
        .is_some_and(|format| format.eq_ignore_ascii_case("json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_settings_choose_level_and_format() {
        let env = Environment::from_pairs([
            ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ]);
        assert_eq!(level(&env), LevelFilter::DEBUG);
        assert!(json(&env));
        let env = Environment::from_pairs([("RUST_LOG", "warn")]);
        assert_eq!(level(&env), LevelFilter::WARN);
        assert!(!json(&env));
        assert_eq!(
            level(&Environment::from_pairs([("RUST_LOG", "ossnap=debug")])),
            LevelFilter::INFO
        );
        assert_eq!(level(&Environment::default()), LevelFilter::INFO);
    }
}
