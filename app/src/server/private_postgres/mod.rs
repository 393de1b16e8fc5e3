//! A private PostgreSQL cluster, so that a newcomer needs no database setup.
//!
//! When `DATABASE_URL` is not set, the web server (and the test runner)
//! start a cluster of their own under `target/postgres/` from the machine's
//! PostgreSQL programs: `data/` is the data directory, `postgres.log` its log.
//! The server listens on 127.0.0.1 only, on a free port, with trust
//! authentication; it is for development and tests, never production.
//!
//! A cluster that is already running in the directory is reused, so several
//! processes (a `cargo leptos watch` restart, the test runner) share one.
//! Starting is serialised by a lock file, so two processes never run
//! `initdb` or start two servers on one directory at once. A cluster
//! started again in the same directory listens on the port it had before
//! (kept in `port`) when that port is free.

mod binaries;
mod pid_file;

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Seek, SeekFrom},
    net::TcpListener,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use nix::{
    fcntl::{Flock, FlockArg},
    sys::signal::{Signal, kill},
    unistd::{Pid, Uid},
};

use binaries::RunAs;
use pid_file::{ServerStatus, running_postmaster};

/// How long a server may take to start or stop before we give up on it.
const PATIENCE: Duration = Duration::from_secs(60);
const POLL_EVERY: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum PrivatePostgresError {
    #[error(
        "PostgreSQL's server programs (initdb, postgres) were not found: looked in `pg_config \
         --bindir` and /usr/lib/postgresql/*/bin. Install them (Debian or Ubuntu: `apt-get \
         install postgresql`; Fedora: `dnf install postgresql-server`; macOS: `brew install \
         postgresql`) or set DATABASE_URL to a running server"
    )]
    NotInstalled,
    #[error(
        "PostgreSQL refuses to run as root and there is no `postgres` user to run it as: create \
         an unprivileged user named postgres, run as another user, or set DATABASE_URL"
    )]
    NoUnprivilegedUser,
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("initdb failed ({status}):\n{output}")]
    InitdbFailed { status: ExitStatus, output: String },
    #[error("PostgreSQL exited while starting ({status}); the end of {}:\n{tail}", log.display())]
    Exited {
        status: ExitStatus,
        log: PathBuf,
        tail: String,
    },
    #[error("PostgreSQL did not {what} within {PATIENCE:?}; see {}", log.display())]
    TimedOut { what: &'static str, log: PathBuf },
}

impl PrivatePostgresError {
    fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }
}

/// Who stops the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// It stops when this process exits, however it exits: dropped, or by
    /// the kernel's parent-death signal when this process is killed.
    ThisProcess,
    /// It runs until [`PrivatePostgres::stop_directory`] stops it.
    Detached,
}

/// A running private cluster.
#[derive(Debug)]
pub struct PrivatePostgres {
    root: PathBuf,
    port: u16,
    /// The postmaster, when this process started it with [`Lifetime::ThisProcess`].
    owned: Option<Child>,
}

impl PrivatePostgres {
    /// `target/postgres` of this workspace, unless `LEDGERLINE_POSTGRES_DIR`
    /// names another. When we are root, the server runs as `postgres`, which
    /// must be able to reach the directory; a checkout under a private home
    /// (`/root`) is not reachable, so the cluster then lives in the temp dir.
    pub fn default_root() -> PathBuf {
        if let Some(dir) = std::env::var_os("LEDGERLINE_POSTGRES_DIR") {
            return PathBuf::from(dir);
        }
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
        let preferred = target.join("postgres");
        if Uid::effective().is_root() && !reachable_by_others(&preferred) {
            let tag = preferred
                .to_string_lossy()
                .bytes()
                .fold(0u32, |hash, byte| {
                    hash.wrapping_mul(31).wrapping_add(u32::from(byte))
                });
            return std::env::temp_dir().join(format!("ledgerline-postgres-{tag:08x}"));
        }
        preferred
    }

    /// Starts the cluster in `root` (creating it on first use), or joins the
    /// one already running there. A joined cluster is never stopped by us.
    pub fn start(root: &Path, lifetime: Lifetime) -> Result<Self, PrivatePostgresError> {
        fs::create_dir_all(root)
            .map_err(|error| PrivatePostgresError::io("create", root, error))?;
        let _lock = lock(root)?;
        let data_dir = root.join("data");

        if let Some(port) = join_running(root, &data_dir)? {
            tracing::info!(root = %root.display(), port, "using the private PostgreSQL cluster already running");
            return Ok(Self {
                root: root.to_owned(),
                port,
                owned: None,
            });
        }

        let bindir = binaries::find_bindir()?;
        let run_as = RunAs::for_this_process()?;
        if !data_dir.join("PG_VERSION").exists() {
            init_cluster(&bindir, run_as, root, &data_dir)?;
        }
        // The port it had before, if it is free: a restarted cluster keeps
        // its address, so programs that were using it find it again.
        let port_file = root.join("port");
        let port = match earlier_port(&port_file) {
            Some(port) => port,
            None => free_port().map_err(|error| {
                PrivatePostgresError::io("find a free port on", Path::new("127.0.0.1"), error)
            })?,
        };
        let log_path = root.join("postgres.log");
        let mut child = spawn_postmaster(&bindir, run_as, &data_dir, &log_path, port, lifetime)?;
        wait_until_ready(&mut child, &data_dir, &log_path, port)?;
        fs::write(&port_file, port.to_string())
            .map_err(|error| PrivatePostgresError::io("write", &port_file, error))?;
        tracing::info!(root = %root.display(), port, "started a private PostgreSQL cluster");

        Ok(Self {
            root: root.to_owned(),
            port,
            owned: (lifetime == Lifetime::ThisProcess).then_some(child),
        })
    }

    /// The URL of `database` on this cluster (the database need not exist yet).
    pub fn database_url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stops the server running in `root`, whoever started it. Returns
    /// whether one was running.
    pub fn stop_directory(root: &Path) -> Result<bool, PrivatePostgresError> {
        let data_dir = root.join("data");
        let postmaster = running_postmaster(&data_dir)
            .map_err(|error| PrivatePostgresError::io("read the pid file in", &data_dir, error))?;
        let Some(postmaster) = postmaster else {
            return Ok(false);
        };
        // SIGINT is PostgreSQL's "fast" shutdown: sessions are ended, the
        // data is checkpointed, and the server exits cleanly.
        let _ = kill(postmaster.pid, Signal::SIGINT);
        let deadline = Instant::now() + PATIENCE;
        while pid_file::is_postgres_process(postmaster.pid) {
            if Instant::now() > deadline {
                return Err(PrivatePostgresError::TimedOut {
                    what: "stop",
                    log: root.join("postgres.log"),
                });
            }
            thread::sleep(POLL_EVERY);
        }
        Ok(true)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.owned.take() {
            let pid = Pid::from_raw(child.id() as i32);
            let _ = kill(pid, Signal::SIGINT);
            match child.wait() {
                Ok(_) => {
                    tracing::info!(root = %self.root.display(), "stopped the private PostgreSQL cluster")
                }
                Err(error) => {
                    tracing::warn!(%error, "could not wait for the private PostgreSQL cluster to stop")
                }
            }
        }
    }
}

/// Holds an exclusive lock on `root/.lock` while starting.
fn lock(root: &Path) -> Result<Flock<File>, PrivatePostgresError> {
    let path = root.join(".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|error| PrivatePostgresError::io("open", &path, error))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| PrivatePostgresError::io("lock", &path, errno.into()))
}

/// The port of a server already running on `data_dir`, once it is ready;
/// `None` when none runs (or the one that ran has finished stopping).
fn join_running(root: &Path, data_dir: &Path) -> Result<Option<u16>, PrivatePostgresError> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let postmaster = running_postmaster(data_dir)
            .map_err(|error| PrivatePostgresError::io("read the pid file in", data_dir, error))?;
        match postmaster {
            None => return Ok(None),
            Some(postmaster) if postmaster.status == ServerStatus::Ready => {
                return Ok(Some(postmaster.port));
            }
            // Starting, or stopping (its owner just exited): wait for it to
            // settle one way or the other.
            Some(_) if Instant::now() > deadline => {
                return Err(PrivatePostgresError::TimedOut {
                    what: "settle",
                    log: root.join("postgres.log"),
                });
            }
            Some(_) => thread::sleep(POLL_EVERY),
        }
    }
}

fn init_cluster(
    bindir: &Path,
    run_as: RunAs,
    root: &Path,
    data_dir: &Path,
) -> Result<(), PrivatePostgresError> {
    fs::create_dir_all(data_dir)
        .map_err(|error| PrivatePostgresError::io("create", data_dir, error))?;
    fs::set_permissions(data_dir, fs::Permissions::from_mode(0o700))
        .map_err(|error| PrivatePostgresError::io("restrict", data_dir, error))?;
    run_as.take_ownership(data_dir)?;

    let mut initdb = Command::new(bindir.join("initdb"));
    initdb
        .arg("--pgdata")
        .arg(data_dir)
        .args([
            "--username=postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        ])
        .args(["--no-sync", "--no-instructions"])
        .current_dir(root);
    run_as.apply(&mut initdb);
    let output = initdb
        .output()
        .map_err(|error| PrivatePostgresError::io("run", &bindir.join("initdb"), error))?;
    if !output.status.success() {
        // A half-made data directory would make the next start skip initdb.
        let _ = fs::remove_dir_all(data_dir);
        return Err(PrivatePostgresError::InitdbFailed {
            status: output.status,
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        });
    }
    Ok(())
}

fn spawn_postmaster(
    bindir: &Path,
    run_as: RunAs,
    data_dir: &Path,
    log_path: &Path,
    port: u16,
    lifetime: Lifetime,
) -> Result<Child, PrivatePostgresError> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(|error| PrivatePostgresError::io("open", log_path, error))?;
    let log_for_stderr = log
        .try_clone()
        .map_err(|error| PrivatePostgresError::io("open", log_path, error))?;

    let mut postgres = Command::new(bindir.join("postgres"));
    postgres
        .arg("-D")
        .arg(data_dir)
        .arg("-p")
        .arg(port.to_string())
        // TCP on loopback only; no Unix socket, whose path length is limited.
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
        ])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_for_stderr)
        // Its own process group: a Ctrl-C in the terminal reaches us, and we
        // stop the server in order, instead of both racing.
        .process_group(0);
    run_as.apply(&mut postgres);
    if lifetime == Lifetime::ThisProcess {
        let parent = nix::unistd::getpid();
        // SAFETY: the closure runs between fork and exec and only makes two
        // async-signal-safe system calls.
        unsafe {
            postgres.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Signal::SIGINT)?;
                // The parent may have died before the signal was armed.
                if nix::unistd::getppid() != parent {
                    return Err(io::Error::other("the parent exited during start"));
                }
                Ok(())
            });
        }
    }
    postgres
        .spawn()
        .map_err(|error| PrivatePostgresError::io("run", &bindir.join("postgres"), error))
}

fn wait_until_ready(
    child: &mut Child,
    data_dir: &Path,
    log_path: &Path,
    port: u16,
) -> Result<(), PrivatePostgresError> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|error| PrivatePostgresError::io("watch", log_path, error))?
        {
            return Err(PrivatePostgresError::Exited {
                status,
                log: log_path.to_owned(),
                tail: log_tail(log_path),
            });
        }
        let postmaster = running_postmaster(data_dir)
            .map_err(|error| PrivatePostgresError::io("read the pid file in", data_dir, error))?;
        if postmaster.is_some_and(|p| p.status == ServerStatus::Ready && p.port == port) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(PrivatePostgresError::TimedOut {
                what: "start",
                log: log_path.to_owned(),
            });
        }
        thread::sleep(POLL_EVERY);
    }
}

/// The port recorded in `port_file`, if it can be listened on now.
fn earlier_port(port_file: &Path) -> Option<u16> {
    let port: u16 = fs::read_to_string(port_file).ok()?.trim().parse().ok()?;
    TcpListener::bind(("127.0.0.1", port)).ok().map(|_| port)
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// True when every existing ancestor of `path` lets other users pass through.
fn reachable_by_others(path: &Path) -> bool {
    path.ancestors()
        .filter_map(|dir| dir.metadata().ok())
        .all(|meta| meta.permissions().mode() & 0o001 != 0)
}

/// The last few lines of the server log, for error messages.
fn log_tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let length = file.metadata().map(|meta| meta.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(length.saturating_sub(4096)));
        let _ = file.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
