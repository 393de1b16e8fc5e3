//! What can go wrong with a script, in words its author can act on.

/// A script failed: while loading, or in one call of a handler or route.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScriptError {
    /// The script could not be read, compiled or run to its end, or it
    /// declared something the host refuses.
    #[error("the script did not load: {0}")]
    Load(String),
    /// A Lua error, with its traceback.
    #[error("{0}")]
    Runtime(String),
    #[error(
        "the script was stopped after {max} Lua instructions in one call \
         (an endless loop?); raise --max-instructions if it needs more"
    )]
    Instructions { max: u64 },
    #[error(
        "the script was stopped for using more than {max_mib} MiB in one call \
         (a runaway allocation?); raise --max-memory-mib if it needs more"
    )]
    Memory { max_mib: usize },
    /// The database or the framework failed under a call: not the script's fault.
    #[error("{0}")]
    Host(String),
}

impl ScriptError {
    /// Whether the VM that ran the call should be thrown away: a call
    /// stopped by a limit may have left half-built garbage behind.
    pub fn spoils_the_vm(&self) -> bool {
        matches!(self, Self::Instructions { .. } | Self::Memory { .. })
    }
}
