//! The limits the protocol names, with its defaults.

/// Limits on inbound messages. Defaults are the protocol's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest text frame, in bytes; a larger one closes the socket (1009).
    pub max_frame_bytes: usize,
    /// Most events in one `new` message.
    pub max_events_per_message: usize,
    /// Most keys in one `consistency` request.
    pub max_keys_per_request: usize,
    /// Most queries one connection may have running at once.
    pub max_queries_per_connection: usize,
    /// Most `consistency` requests one connection may have unanswered.
    pub max_lookups_per_connection: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 1024 * 1024,
            max_events_per_message: 1000,
            max_keys_per_request: 1000,
            max_queries_per_connection: 4,
            max_lookups_per_connection: 16,
        }
    }
}

/// Longest `request_id`.
pub const MAX_REQUEST_ID_CHARS: usize = 128;
/// Longest consistency key.
pub const MAX_KEY_CHARS: usize = 256;
/// Longest `nack` reason kept; longer ones are cut, not refused.
pub const MAX_REASON_CHARS: usize = 1024;
