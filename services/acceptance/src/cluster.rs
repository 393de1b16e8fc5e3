//! A private PostgreSQL cluster for one test, so that a test that stops
//! or restarts the server touches nothing else. It is made and run by the
//! web server's binary (`ledgerline postgres --dir DIR start|stop`), which
//! keeps the cluster's port across restarts.

use std::{path::PathBuf, process::Command};

use crate::process::binary;

pub struct Cluster {
    dir: PathBuf,
    /// A URL of the cluster's `ledgerline` database; [`crate::TestDb::on`]
    /// makes a database of its own beside it.
    pub url: String,
}

impl Cluster {
    /// A new cluster in a directory of its own, started.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("ledgerline-cluster-{}", uuid::Uuid::now_v7()));
        let url = Self::postgres(&dir, "start");
        Self { dir, url }
    }

    /// Stopped (fast shutdown: sessions are ended, the data checkpointed).
    pub fn stop(&self) {
        Self::postgres(&self.dir, "stop");
    }

    /// Started again, on the same port; returns once it accepts connections.
    pub fn start_again(&self) {
        let url = Self::postgres(&self.dir, "start");
        assert_eq!(url, self.url, "the cluster came back on another address");
    }

    fn postgres(dir: &PathBuf, action: &str) -> String {
        let output = Command::new(binary("ledgerline"))
            .args(["postgres", "--dir"])
            .arg(dir)
            .arg(action)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap_or_else(|error| panic!("run `ledgerline postgres {action}`: {error}"));
        assert!(
            output.status.success(),
            "`ledgerline postgres {action}` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(binary("ledgerline"))
            .args(["postgres", "--dir"])
            .arg(&self.dir)
            .arg("stop")
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
