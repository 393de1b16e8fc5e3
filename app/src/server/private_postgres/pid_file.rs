//! Reading `postmaster.pid`, which a running PostgreSQL server keeps in its
//! data directory: its process id, port and whether it accepts connections.

use std::{fs, io, path::Path};

use nix::{errno::Errno, sys::signal::kill, unistd::Pid};

/// What the postmaster says about itself (the `PM_STATUS_*` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerStatus {
    Starting,
    Ready,
    Stopping,
    Unknown,
}

/// A live postmaster of a data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Postmaster {
    pub pid: Pid,
    pub port: u16,
    pub status: ServerStatus,
}

/// The postmaster that owns `data_dir`, if one is running. A file left
/// behind by a killed server (no such process any more) counts as none.
pub fn running_postmaster(data_dir: &Path) -> io::Result<Option<Postmaster>> {
    let text = match fs::read_to_string(data_dir.join("postmaster.pid")) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    Ok(parse(&text).filter(|postmaster| is_postgres_process(postmaster.pid)))
}

/// Parses the file; `None` while it is still being written (too few lines).
fn parse(text: &str) -> Option<Postmaster> {
    let lines: Vec<&str> = text.lines().collect();
    let pid = lines.first()?.trim().parse::<i32>().ok()?;
    let port = lines.get(3)?.trim().parse::<u16>().ok()?;
    let status = match lines.get(7).map(|line| line.trim()) {
        Some("ready") | Some("standby") => ServerStatus::Ready,
        Some("starting") => ServerStatus::Starting,
        Some("stopping") => ServerStatus::Stopping,
        _ => ServerStatus::Unknown,
    };
    Some(Postmaster {
        pid: Pid::from_raw(pid),
        port,
        status,
    })
}

/// True when `pid` is a live PostgreSQL server: not some other process that
/// inherited the number after the server died, nor an exited server that its
/// parent has not reaped yet (a zombie keeps its name).
pub fn is_postgres_process(pid: Pid) -> bool {
    let alive = matches!(kill(pid, None), Ok(()) | Err(Errno::EPERM));
    alive
        && fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| is_running_postgres(&stat))
            .unwrap_or(false)
}

/// Reads `/proc/PID/stat`: `PID (COMM) STATE …`.
fn is_running_postgres(stat: &str) -> bool {
    let Some((name, rest)) = stat
        .split_once(" (")
        .and_then(|(_, rest)| rest.rsplit_once(") "))
    else {
        return false;
    };
    name == "postgres" && !rest.starts_with('Z') && !rest.starts_with('X')
}

#[cfg(test)]
mod tests {
    use super::*;

    const READY: &str =
        "4242\n/tmp/data\n1764370000\n54321\n\n127.0.0.1\n  1234   5678\nready   \n";

    #[test]
    fn reads_pid_port_and_status() {
        let postmaster = parse(READY).expect("a complete file parses");
        assert_eq!(postmaster.pid, Pid::from_raw(4242));
        assert_eq!(postmaster.port, 54321);
        assert_eq!(postmaster.status, ServerStatus::Ready);
    }

    #[test]
    fn a_file_still_being_written_is_not_a_server() {
        assert_eq!(parse("4242\n/tmp/data\n"), None);
    }

    #[test]
    fn a_zombie_or_another_program_is_not_a_running_server() {
        assert!(is_running_postgres("4242 (postgres) S 1 4242 4242 0 -1"));
        assert!(!is_running_postgres("4242 (postgres) Z 1 4242 4242 0 -1"));
        assert!(!is_running_postgres("4242 (bash) S 1 4242 4242 0 -1"));
    }

    #[test]
    fn reads_the_transitional_states() {
        let starting = READY.replace("ready   ", "starting");
        let stopping = READY.replace("ready   ", "stopping");
        assert_eq!(
            parse(&starting).map(|p| p.status),
            Some(ServerStatus::Starting)
        );
        assert_eq!(
            parse(&stopping).map(|p| p.status),
            Some(ServerStatus::Stopping)
        );
    }
}
