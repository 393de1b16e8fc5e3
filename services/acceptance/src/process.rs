//! The real binaries as child processes.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use crate::{STAFF, bank::Trust};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Users,
    Accounts,
    Transactions,
    Reporting,
    /// `services/nectar/nectar.lua` on the scripted host.
    Nectar,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Accounts => "accounts",
            Self::Transactions => "transactions",
            Self::Reporting => "reporting",
            Self::Nectar => "nectar",
        }
    }

    /// The binary that runs it.
    pub fn program(self) -> &'static str {
        match self {
            Self::Nectar => "scripted",
            other => other.name(),
        }
    }
}

/// The Nectar loyalty script.
pub fn nectar_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../nectar/nectar.lua")
}

/// A running binary, on a port of its own.
pub struct Process {
    child: Child,
    /// Which service it is, if it is one.
    service: Option<Service>,
    program: PathBuf,
    env: Vec<(String, String)>,
    /// `host:port` it listens on.
    pub address: String,
    /// Everything it has written to stderr (its log), which is also passed
    /// on to the test's own stderr unless the test set its own filter.
    log: Arc<Mutex<String>>,
}

/// The path of the workspace's binary `name`, built beside this program.
pub fn binary(name: &str) -> PathBuf {
    // A test runs from target/PROFILE/deps/, the benchmark from target/PROFILE/.
    let own = std::env::current_exe().expect("the program's own path");
    let mut directory = own.parent().expect("a directory");
    if directory.ends_with("deps") {
        directory = directory.parent().expect("target/PROFILE");
    }
    let path = directory.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first: `cargo build [--release] -p bus -p users -p accounts -p transactions -p reporting -p scripted` (and `-p app --features ssr --bin ledgerline` for the web server)",
        path.display()
    );
    path
}

fn path(path: PathBuf) -> String {
    path.display().to_string()
}

impl Process {
    /// The bus, with the installation's credentials and the development
    /// token the tests read the whole log with.
    pub fn bus(database_url: &str, trust: &Trust) -> Self {
        Self::spawn(
            binary("bus"),
            vec![
                ("DATABASE_URL".into(), database_url.into()),
                ("BUS_LISTEN".into(), "127.0.0.1:0".into()),
                ("BUS_RETRY_BACKOFF_MS".into(), "50".into()),
                (
                    "BUS_CREDENTIALS".into(),
                    path(trust.files.bus_credentials()),
                ),
                ("BUS_TOKEN".into(), trust.admin_token.clone()),
            ],
        )
    }

    pub fn service(service: Service, database_url: &str, bus: &Process, trust: &Trust) -> Self {
        Self::service_with(service, database_url, bus, trust, &[])
    }

    /// A service with settings of the test's own (`SCRIPT` for another
    /// script on the scripted host, say).
    pub fn service_with(
        service: Service,
        database_url: &str,
        bus: &Process,
        trust: &Trust,
        settings: &[(&str, &str)],
    ) -> Self {
        let mut env: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), database_url.into()),
            ("BUS_URL".into(), bus.bus_url()),
            ("LISTEN".into(), "127.0.0.1:0".into()),
            (
                "BUS_TOKEN_FILE".into(),
                path(trust.files.bus_token(service.name())),
            ),
            ("CALLERS_FILE".into(), path(trust.files.callers())),
            // A bus that does not answer is given up on sooner than in
            // production, so that tests of outages run quickly.
            ("BUS_DEADLINE_MS".into(), "3000".into()),
            (
                "USER_TOKEN_PUBLIC_KEY_FILE".into(),
                path(trust.files.user_token_public_key()),
            ),
        ];
        if service == Service::Users {
            env.extend([
                (
                    "USER_TOKEN_PRIVATE_KEY_FILE".into(),
                    path(trust.files.user_token_private_key()),
                ),
                ("STAFF_USERNAME".into(), STAFF.0.into()),
                ("STAFF_PASSWORD".into(), STAFF.1.into()),
            ]);
        }
        if service == Service::Nectar {
            env.push(("SCRIPT".into(), path(nectar_script())));
        }
        env.extend(
            settings
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
        );
        let mut process = Self::spawn(binary(service.program()), env);
        process.service = Some(service);
        process
    }

    /// Which service this is (`None` for the bus and the web server).
    pub fn kind(&self) -> Option<Service> {
        self.service
    }

    /// The web server (`ledgerline`, built with `--features ssr`) serving
    /// this bank as separate processes, with its own caller and bus tokens,
    /// and with loyalty points when `nectar` runs.
    pub fn web(database_url: &str, bank: &crate::Bank, nectar: Option<&Process>) -> Self {
        let url = |process: &Process| process.http_base();
        let accounts = bank.accounts.first().expect("an accounts instance");
        let site = std::env::temp_dir().join(format!("ledgerline-site-{}", uuid::Uuid::now_v7()));
        let mut env: Vec<(String, String)> = nectar
            .map(|nectar| ("NECTAR_URL".into(), url(nectar)))
            .into_iter()
            .collect();
        env.extend([
            ("DATABASE_URL".into(), database_url.into()),
            ("LEPTOS_SITE_ADDR".into(), "127.0.0.1:0".into()),
            ("LEPTOS_SITE_ROOT".into(), path(site)),
            ("USERS_URL".into(), url(&bank.users)),
            ("ACCOUNTS_URL".into(), url(accounts)),
            ("TRANSACTIONS_URL".into(), url(&bank.transactions)),
            ("REPORTING_URL".into(), url(&bank.reporting)),
            ("BUS_URL".into(), bank.bus.bus_url()),
            (
                "CALLER_TOKEN_FILE".into(),
                path(bank.trust.files.caller_token("web")),
            ),
            (
                "BUS_TOKEN_FILE".into(),
                path(bank.trust.files.bus_token("web")),
            ),
            (
                "STAFF_BUS_TOKEN_FILE".into(),
                path(bank.trust.files.bus_token("staff")),
            ),
        ]);
        Self::spawn(binary("ledgerline"), env)
    }

    fn spawn(program: PathBuf, env: Vec<(String, String)>) -> Self {
        // Nothing of the developer's own environment leaks in.
        let mut child = Command::new(&program)
            .env_remove("BUS_TOKEN")
            .env_remove("BUS_CREDENTIALS")
            .env(
                "RUST_LOG",
                std::env::var("SERVICE_LOG").unwrap_or_else(|_| "error".into()),
            )
            // A test's own settings win, a log filter among them.
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let kept = log.clone();
        // A log the test asked for in detail is kept for it, not shown.
        let echo = !env.iter().any(|(name, _)| name == "RUST_LOG");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if echo {
                    eprintln!("{line}");
                }
                if let Ok(mut log) = kept.lock() {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the first line");
        // `NAME listening on ADDRESS`, or the web server's `Ledgerline is up at http://ADDRESS`.
        let address = line
            .trim()
            .split_once(" listening on ")
            .map(|(_, address)| address)
            .or_else(|| line.trim().strip_prefix("Ledgerline is up at http://"))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("{} did not start: {line:?}", program.display()));
        Self {
            child,
            service: None,
            program,
            env,
            address,
            log,
        }
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }

    pub fn bus_url(&self) -> String {
        format!("ws://{}/bus", self.address)
    }

    pub fn http_base(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The process id, for samples of its memory.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no shutdown of any kind.
    pub fn kill9(&mut self) {
        self.signal(Signal::SIGKILL);
        let _ = self.child.wait();
    }

    /// SIGSTOP: frozen, holding whatever it holds, until [`Self::resume`].
    pub fn freeze(&self) {
        self.signal(Signal::SIGSTOP);
    }

    /// SIGCONT after [`Self::freeze`].
    pub fn resume(&self) {
        self.signal(Signal::SIGCONT);
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal(Signal::SIGTERM);
        self.child.wait().expect("wait for the process")
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("signal the process");
    }

    /// Restarted with these settings added (a log filter, say).
    pub fn restart_with(&mut self, settings: &[(&str, &str)]) {
        self.env.extend(
            settings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self.restart();
    }

    /// The same program and settings again, on the same address, so that
    /// its clients find it again.
    pub fn restart(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.terminate();
        }
        let mut env = self.env.clone();
        if let Some(listen) = env
            .iter_mut()
            .find(|(k, _)| k == "BUS_LISTEN" || k == "LISTEN")
        {
            listen.1 = self.address.clone();
        }
        let service = self.service;
        *self = Self::spawn(self.program.clone(), env);
        self.service = service;
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
