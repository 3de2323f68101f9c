//! Processes the stack runs beside itself (a real OpenSearch node, Azurite): each in a process
//! group of its own, asked to die with the thread that started it (a killed test process), and
//! stopped with the stack: SIGTERM to the group, a bounded wait, then SIGKILL. Dropping an
//! [`OwnedChild`] stops it too (a failed test).

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::Error;

pub(crate) struct OwnedChild {
    process: Option<Child>,
    /// What the process is, for the log line when it has to be killed.
    what: &'static str,
    stop_timeout: Duration,
}

impl OwnedChild {
    /// Spawns `command` in its own process group with PR_SET_PDEATHSIG. Call it on a thread that
    /// lives as long as the process should (not a blocking-pool thread: those come and go, and
    /// the child would be told to die with them).
    pub(crate) fn spawn(
        command: &mut Command,
        what: &'static str,
        stop_timeout: Duration,
    ) -> std::io::Result<OwnedChild> {
        // Its own process group, so that stopping it reaches anything it forked.
        command.process_group(0);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        Ok(OwnedChild {
            process: Some(command.spawn()?),
            what,
            stop_timeout,
        })
    }

    pub(crate) fn id(&self) -> Option<u32> {
        self.process.as_ref().map(Child::id)
    }

    /// How it ended, if it has.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.process
            .as_mut()
            .and_then(|process| process.try_wait().ok().flatten())
    }

    /// Stops the process and waits for it (off the async threads).
    pub(crate) async fn stop(mut self) {
        if let Some(process) = self.process.take() {
            let (what, stop_timeout) = (self.what, self.stop_timeout);
            let _ =
                tokio::task::spawn_blocking(move || terminate(process, what, stop_timeout)).await;
        }
    }
}

impl Drop for OwnedChild {
    fn drop(&mut self) {
        if let Some(process) = self.process.take() {
            terminate(process, self.what, self.stop_timeout);
        }
    }
}

/// SIGTERM to the process group, a bounded wait, then SIGKILL.
fn terminate(mut process: Child, what: &str, stop_timeout: Duration) {
    let group = process.id() as libc::pid_t;
    // SAFETY: kill has no memory-safety preconditions; a negative pid names the process group.
    unsafe { libc::kill(-group, libc::SIGTERM) };
    let deadline = Instant::now() + stop_timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = process.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    tracing::warn!(pid = group, "{what} did not stop after SIGTERM; killing it");
    // SAFETY: as above.
    unsafe { libc::kill(-group, libc::SIGKILL) };
    let _ = process.wait();
}

/// `port` on 127.0.0.1, or a free one for 0, for a child process to listen on. The port is
/// released before the child binds it; another process could take it in between, which the
/// child then reports when it fails to start.
pub(crate) fn loopback_port(what: &'static str, port: u16) -> Result<std::net::SocketAddr, Error> {
    let bind_error = |source| Error::Bind { what, port, source };
    std::net::TcpListener::bind(("127.0.0.1", port))
        .and_then(|listener| listener.local_addr())
        .map_err(bind_error)
}

/// The last `lines` lines of a child's console log, for an error message.
pub(crate) fn log_tail(log: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
