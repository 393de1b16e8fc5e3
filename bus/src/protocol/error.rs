//! The `error` message's codes, and the error every inbound check returns.

use serde::{Deserialize, Serialize};

/// The codes of the protocol's `error` message (and of a `rejected` receipt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadJson,
    UnknownMessageType,
    InvalidField,
    AlreadyRegistered,
    NotRegistered,
    TooManyEvents,
    PartialDuplicate,
    /// The bus could not store or read events (its database failed).
    Unavailable,
    /// The bus is shutting down and takes no new work.
    ShuttingDown,
    /// Outside the scope of the connection's credentials.
    Forbidden,
    /// More concurrent queries than one connection (or the bus) allows.
    TooManyQueries,
    /// An observer fell too far behind; the socket is closed with 1013.
    TooSlow,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadJson => "bad_json",
            Self::UnknownMessageType => "unknown_message_type",
            Self::InvalidField => "invalid_field",
            Self::AlreadyRegistered => "already_registered",
            Self::NotRegistered => "not_registered",
            Self::TooManyEvents => "too_many_events",
            Self::PartialDuplicate => "partial_duplicate",
            Self::Unavailable => "unavailable",
            Self::ShuttingDown => "shutting_down",
            Self::Forbidden => "forbidden",
            Self::TooManyQueries => "too_many_queries",
            Self::TooSlow => "too_slow",
        }
    }
}

/// Why an inbound message was refused: answered with an `error` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
    /// The bad message's `request_id`, when it had a readable one.
    pub request_id: Option<String>,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            request_id: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidField, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }
}
