//! The private PostgreSQL cluster, and the web server that runs on it when
//! no `DATABASE_URL` is given: real `initdb`, real `postgres`, real signals.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use app::server::{
    database,
    private_postgres::{Lifetime, PrivatePostgres},
};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

/// A directory for one cluster. It is in the temp dir, open to others,
/// because as root the server runs as the `postgres` user.
fn cluster_root() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("ledgerline-test-pg-")
        .tempdir()
        .expect("a temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("open the temp dir to the postgres user");
    dir
}

fn pid_file(root: &Path) -> PathBuf {
    root.join("data/postmaster.pid")
}

/// Polls `condition` until it holds, failing the test after `within`.
fn eventually(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn a_cluster_is_created_migrated_stopped_and_keeps_its_data() {
    let root = cluster_root();

    let cluster = PrivatePostgres::start(root.path(), Lifetime::ThisProcess).expect("start");
    let url = cluster.database_url("ledgerline");
    let pool = database::connect(&url)
        .await
        .expect("create and migrate the database");
    sqlx::query(
        "INSERT INTO web.status_checks (postgres_version, schema_version) VALUES ('kept', 1)",
    )
    .execute(&pool)
    .await
    .expect("insert");
    pool.close().await;
    assert!(
        pid_file(root.path()).exists(),
        "the server runs while the handle lives"
    );

    drop(cluster);
    assert!(
        !pid_file(root.path()).exists(),
        "dropping the handle stops the server"
    );

    let again = PrivatePostgres::start(root.path(), Lifetime::ThisProcess).expect("restart");
    assert_eq!(
        again.database_url("ledgerline"),
        url,
        "a restarted cluster keeps its address"
    );
    let pool = database::connect(&again.database_url("ledgerline"))
        .await
        .expect("reconnect");
    let kept: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM web.status_checks WHERE postgres_version = 'kept'",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(kept, 1, "the data survives a restart of the cluster");
    pool.close().await;
}

#[test]
fn a_running_cluster_is_joined_and_left_running() {
    let root = cluster_root();
    let detached = PrivatePostgres::start(root.path(), Lifetime::Detached).expect("start");
    let url = detached.database_url("postgres");
    drop(detached);
    assert!(
        pid_file(root.path()).exists(),
        "a detached cluster outlives its handle"
    );

    let joined = PrivatePostgres::start(root.path(), Lifetime::ThisProcess).expect("join");
    assert_eq!(
        joined.database_url("postgres"),
        url,
        "the same server is reused"
    );
    drop(joined);
    assert!(
        pid_file(root.path()).exists(),
        "a joined cluster is not ours to stop"
    );

    assert!(PrivatePostgres::stop_directory(root.path()).expect("stop"));
    assert!(!pid_file(root.path()).exists());
    assert!(!PrivatePostgres::stop_directory(root.path()).expect("stop again"));
}

/// The web server binary, started with a private cluster in `root`.
struct WebServer {
    child: Child,
    address: SocketAddr,
}

impl WebServer {
    fn start(root: &Path, database_url: Option<&str>) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ledgerline"));
        command
            .env_remove("DATABASE_URL")
            .env("LEDGERLINE_POSTGRES_DIR", root)
            .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
            .env("LEPTOS_SITE_ROOT", root.join("site"))
            .env("LEDGERLINE_STATE_DIR", root.join("state"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(url) = database_url {
            command.env("DATABASE_URL", url);
        }
        let mut child = command.spawn().expect("spawn the web server");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("read the server's first line");
        let address = line
            .trim()
            .strip_prefix("Ledgerline is up at http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .parse()
            .expect("an address");
        Self { child, address }
    }

    fn health(&self) -> u16 {
        let mut stream = TcpStream::connect(self.address).expect("connect");
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("signal the server");
    }
}

impl Drop for WebServer {
    /// A failed test must not leave its server running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn without_database_url_the_server_runs_its_own_cluster_and_stops_it_when_killed() {
    let root = cluster_root();
    let mut server = WebServer::start(root.path(), None);
    assert_eq!(server.health(), 200);
    assert!(pid_file(root.path()).exists());

    server.signal(Signal::SIGKILL);
    server.child.wait().expect("reap");
    eventually(
        "the orphaned cluster stops",
        Duration::from_secs(30),
        || !pid_file(root.path()).exists(),
    );
}

#[test]
fn a_terminated_server_shuts_down_cleanly_and_stops_its_cluster() {
    let root = cluster_root();
    let mut server = WebServer::start(root.path(), None);
    assert_eq!(server.health(), 200);

    server.signal(Signal::SIGTERM);
    let status = server.child.wait().expect("wait");
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    assert!(
        !pid_file(root.path()).exists(),
        "the cluster is stopped before the server exits"
    );
}

#[test]
fn health_answers_503_while_the_database_is_down() {
    let root = cluster_root();
    let cluster = PrivatePostgres::start(root.path(), Lifetime::Detached).expect("start");
    let mut server = WebServer::start(root.path(), Some(&cluster.database_url("ledgerline")));
    assert_eq!(server.health(), 200);

    PrivatePostgres::stop_directory(root.path()).expect("stop the database");
    assert_eq!(server.health(), 503);

    server.signal(Signal::SIGTERM);
    server.child.wait().expect("wait");
}
