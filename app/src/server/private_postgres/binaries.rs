//! Finding PostgreSQL's server programs and the user to run them as.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use nix::unistd::{Gid, Uid, User};

use super::PrivatePostgresError;

/// Where `initdb` and `postgres` live: `pg_config --bindir` when it names a
/// directory that has them, else the newest `/usr/lib/postgresql/*/bin`
/// (Debian keeps the server programs there, off the PATH).
pub fn find_bindir() -> Result<PathBuf, PrivatePostgresError> {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    from_pg_config
        .into_iter()
        .chain(debian_bindirs())
        .find(|dir| has_server_programs(dir))
        .ok_or(PrivatePostgresError::NotInstalled)
}

fn has_server_programs(dir: &Path) -> bool {
    ["initdb", "postgres"].iter().all(|program| {
        dir.join(program)
            .metadata()
            .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

/// `/usr/lib/postgresql/<major>/bin`, newest major first.
fn debian_bindirs() -> Vec<PathBuf> {
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .collect();
    majors.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
    majors.into_iter().map(|(_, dir)| dir).collect()
}

/// The account the cluster's programs run as: this process's own, unless it
/// is root, which `initdb` and `postgres` refuse; then Debian's `postgres`.
#[derive(Debug, Clone, Copy)]
pub enum RunAs {
    CurrentUser,
    Unprivileged { uid: Uid, gid: Gid },
}

impl RunAs {
    pub fn for_this_process() -> Result<Self, PrivatePostgresError> {
        if !Uid::effective().is_root() {
            return Ok(Self::CurrentUser);
        }
        match User::from_name("postgres") {
            Ok(Some(user)) => Ok(Self::Unprivileged {
                uid: user.uid,
                gid: user.gid,
            }),
            _ => Err(PrivatePostgresError::NoUnprivilegedUser),
        }
    }

    /// Makes `command` run under this account.
    pub fn apply(self, command: &mut Command) {
        if let Self::Unprivileged { uid, gid } = self {
            use std::os::unix::process::CommandExt;
            command.uid(uid.as_raw()).gid(gid.as_raw());
        }
    }

    /// Hands `path` to this account.
    pub fn take_ownership(self, path: &Path) -> Result<(), PrivatePostgresError> {
        if let Self::Unprivileged { uid, gid } = self {
            nix::unistd::chown(path, Some(uid), Some(gid)).map_err(|errno| {
                PrivatePostgresError::io("change the owner of", path, errno.into())
            })?;
        }
        Ok(())
    }
}
