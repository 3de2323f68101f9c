//! Time, injected so that names, signatures and waits are deterministic in tests.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;

/// Tells the time and sleeps; real by default, fixed or instant in tests.
#[derive(Clone)]
pub struct Clock {
    now: Arc<dyn Fn() -> SystemTime + Send + Sync>,
    sleeps: bool,
}

impl Clock {
    pub fn system() -> Clock {
        Clock {
            now: Arc::new(SystemTime::now),
            sleeps: true,
        }
    }

    /// A clock stopped at `time` whose sleeps return at once.
    pub fn fixed(time: SystemTime) -> Clock {
        Clock {
            now: Arc::new(move || time),
            sleeps: false,
        }
    }

    /// The real time, with sleeps that return at once (for retry loops in tests).
    pub fn without_sleeps() -> Clock {
        Clock {
            now: Arc::new(SystemTime::now),
            sleeps: false,
        }
    }

    pub fn now(&self) -> SystemTime {
        (self.now)()
    }

    pub fn now_utc(&self) -> OffsetDateTime {
        OffsetDateTime::from(self.now())
    }

    pub fn now_millis(&self) -> i64 {
        self.now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }

    pub async fn sleep(&self, duration: Duration) {
        if self.sleeps {
            tokio::time::sleep(duration).await;
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clock").field("now", &self.now()).finish()
    }
}
