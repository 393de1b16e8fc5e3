//! The bus wire protocol, version 1.1 (`bus/PROTOCOL.md`): the messages,
//! their JSON shapes, and the checks every inbound message passes before the
//! bus acts on it.
//!
//! Inbound messages are parsed by [`parse_client_message`], which either
//! yields a validated [`ClientMessage`] or a [`ProtocolError`] carrying the
//! protocol's error code, a precise message and the request id when the bad
//! message had a readable one.

mod consistency;
mod error;
mod inbound;
mod limits;
mod names;
mod outbound;
mod parse;
mod timestamp;

pub use consistency::{Consistency, ConsistencyValue};
pub use error::{ErrorCode, ProtocolError};
pub use inbound::{
    Ack, ClientMessage, ConsistencyRequest, Mode, Nack, NewEvent, NewMessage, Query, QueryStart,
    Register,
};
pub use limits::Limits;
pub use names::{EventTypes, is_valid_name};
pub use outbound::{
    ConsistencyAnswer, DeliveredEvent, ErrorMessage, EventFrame, EventRecord, Rebuild,
    RebuildComplete, Receipt, ReceiptEvent, ReceiptEventStatus, ReceiptStatus, Registration,
    ServerMessage,
};
pub use parse::parse_client_message;
pub use timestamp::{format_timestamp, parse_since};
