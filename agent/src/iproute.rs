//! Running iproute2's `ip` with JSON output (`ip -j ...`) under a timeout, for the parts of the
//! kernel's network state that `/proc` does not show: address lifetimes of IPv4 addresses and
//! the IPv6 neighbour table.
//!
//! The binary is looked up at fixed absolute paths, never through `PATH` (the agent may run as
//! root with whatever environment its service manager gives it). A missing binary, an `ip` too
//! old for `-j` (iproute2 < 4.14, BusyBox), a non-zero exit or a time-out is an `Err` the caller
//! logs at a limited rate; it never stops a collection.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where distributions install iproute2's `ip`, most common first.
pub const IP_PATHS: [&str; 4] = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"];

/// How long one `ip` call may take before it is killed.
pub const IP_TIMEOUT: Duration = Duration::from_secs(3);

/// Output larger than this is cut (and then fails to parse): a runaway answer must not eat memory.
const MAX_OUTPUT: u64 = 16 * 1024 * 1024;

/// The first of [`IP_PATHS`] that exists below `root` (as a path on the real machine when `root`
/// is "/").
pub fn find_ip(root: &Path) -> Option<PathBuf> {
    IP_PATHS
        .iter()
        .map(|p| root.join(&p[1..]))
        .find(|p| p.is_file())
}

/// Runs `program args...` with no input and returns its standard output, or why not.
pub fn run(program: &Path, args: &[&str], timeout: Duration) -> Result<String, String> {
    let mut child = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("no stdout pipe".into());
    };
    // Read on another thread so a large answer cannot fill the pipe and stall the child.
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout.take(MAX_OUTPUT).read_to_end(&mut out).map(|_| out)
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if start.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "{} {} did not finish within {timeout:?}",
                    program.display(),
                    args.join(" ")
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("waiting for {}: {e}", program.display()));
            }
        }
    };
    // The child has exited or been killed, so its end of the pipe is closed and this returns.
    let output = reader.join();
    let status = status?;
    if !status.success() {
        return Err(format!(
            "{} {} failed ({status})",
            program.display(),
            args.join(" ")
        ));
    }
    let bytes = match output {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => return Err(format!("reading {} output: {e}", program.display())),
        Err(_) => return Err(format!("reading {} output panicked", program.display())),
    };
    String::from_utf8(bytes).map_err(|_| format!("{} printed invalid UTF-8", program.display()))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn returns_output_fails_on_exit_code_and_times_out() {
        let sh = Path::new("/bin/sh");
        assert_eq!(
            run(sh, &["-c", "echo hi"], IP_TIMEOUT).as_deref(),
            Ok("hi\n")
        );
        let err = run(sh, &["-c", "exit 3"], IP_TIMEOUT).expect_err("exit 3 is a failure");
        assert!(err.contains("failed"), "{err}");
        let start = Instant::now();
        let err =
            run(sh, &["-c", "exec sleep 5"], Duration::from_millis(200)).expect_err("timeout");
        assert!(err.contains("did not finish"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(4));
        let err = run(Path::new("/nonexistent/ip"), &[], IP_TIMEOUT).expect_err("missing");
        assert!(err.contains("cannot run"), "{err}");
    }

    #[test]
    fn find_ip_looks_below_root() {
        let dir =
            std::env::temp_dir().join(format!("cloudgov-agent-findip-{}", std::process::id()));
        assert_eq!(find_ip(&dir), None);
        std::fs::create_dir_all(dir.join("sbin")).expect("mkdir");
        std::fs::write(dir.join("sbin/ip"), "").expect("write");
        assert_eq!(find_ip(&dir), Some(dir.join("sbin/ip")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
