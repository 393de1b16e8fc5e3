//! The state of one call into a script: what it may do, what it wrote,
//! published and read. Kept in the VM's app data for the call's length.

use std::collections::BTreeMap;

use serde_json::Value;
use superclient::{Emit, Read};

use crate::bridge::Bridge;

/// What the running code is allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The script's top level: it declares its handlers and routes.
    Load,
    /// A `bus:on` handler applying a fact: it reads and writes the store.
    Apply,
    /// A `bus:react` handler or a route that may publish: it reads the
    /// store and versions, and publishes.
    Decide,
    /// A `GET` route: it reads.
    Read,
}

impl Mode {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Load => "while the script loads",
            Self::Apply => "in a bus:on handler",
            Self::Decide => "in a decision",
            Self::Read => "in a GET route",
        }
    }
}

/// Store writes not yet flushed: `None` deletes the key.
pub(crate) type Writes = BTreeMap<String, Option<Value>>;

pub(crate) struct Call {
    pub mode: Mode,
    pub bridge: Option<Bridge>,
    pub writes: Writes,
    pub emits: Vec<Emit>,
    pub reads: Vec<Read>,
    /// A key the call asked for that must be brought up to date first.
    pub needs_sync: Option<String>,
    /// The database failed under the call: it fails, whatever the script
    /// made of the error (a `pcall` must not turn an outage into `nil`).
    pub host_failure: Option<String>,
}

impl Call {
    pub(crate) fn new(mode: Mode, bridge: Option<Bridge>) -> Self {
        Self {
            mode,
            bridge,
            writes: Writes::new(),
            emits: Vec::new(),
            reads: Vec::new(),
            needs_sync: None,
            host_failure: None,
        }
    }
}
