//! From a text frame to a validated [`ClientMessage`], or a precise error.
//!
//! The common case costs one pass of serde over the frame (after a cheap
//! look at its `message_type`); only a bad frame pays for a second, slower
//! pass that finds the offending field's path and the `request_id`.

use serde::{Deserialize, de::DeserializeOwned};

use super::{
    ClientMessage, Limits, ProtocolError,
    error::ErrorCode,
    inbound::{AckWire, ConsistencyWire, NackWire, NewWire, QueryWire, RegisterWire},
};

const MESSAGE_TYPES: [&str; 6] = ["register", "new", "ack", "nack", "query", "consistency"];

pub fn parse_client_message(text: &str, limits: &Limits) -> Result<ClientMessage, ProtocolError> {
    let message_type = message_type(text)?;
    match message_type.as_str() {
        "register" => Ok(ClientMessage::Register(
            parse::<RegisterWire>(text)?.validate()?,
        )),
        "new" => Ok(ClientMessage::New(
            parse::<NewWire>(text)?.validate(limits)?,
        )),
        "ack" => Ok(ClientMessage::Ack(parse::<AckWire>(text)?.validate()?)),
        "nack" => Ok(ClientMessage::Nack(parse::<NackWire>(text)?.validate()?)),
        "query" => Ok(ClientMessage::Query(parse::<QueryWire>(text)?.validate()?)),
        "consistency" => Ok(ClientMessage::Consistency(
            parse::<ConsistencyWire>(text)?.validate(limits)?,
        )),
        other => Err(ProtocolError::new(
            ErrorCode::UnknownMessageType,
            format!(
                "unknown message_type {other:?}; expected one of {}",
                MESSAGE_TYPES.join(", ")
            ),
        )
        .with_request_id(request_id(text))),
    }
}

/// The frame's `message_type`: read straight off the front when the client
/// put it first (ours do), else by a pass that skips everything else.
fn message_type(text: &str) -> Result<String, ProtocolError> {
    const PREFIX: &str = "{\"message_type\":\"";
    if let Some(rest) = text.strip_prefix(PREFIX)
        && let Some(end) = rest.find('"')
        && !rest[..end].contains('\\')
    {
        return Ok(rest[..end].to_owned());
    }

    // Any other shape: read the whole frame as JSON to say what is wrong.
    let value: serde_json::Value = serde_json::from_str(text).map_err(|error| {
        ProtocolError::new(ErrorCode::BadJson, format!("not valid JSON: {error}"))
    })?;
    let Some(object) = value.as_object() else {
        return Err(ProtocolError::invalid(
            "a message must be a JSON object with a message_type",
        ));
    };
    match object.get("message_type") {
        Some(serde_json::Value::String(message_type)) => Ok(message_type.clone()),
        Some(_) => Err(ProtocolError::invalid("message_type must be a string")
            .with_request_id(request_id(text))),
        None => {
            Err(ProtocolError::invalid("message_type is missing").with_request_id(request_id(text)))
        }
    }
}

fn parse<T: DeserializeOwned>(text: &str) -> Result<T, ProtocolError> {
    serde_json::from_str(text).map_err(|_| explain(text))
}

/// The slow path: where exactly the frame went wrong.
fn explain(text: &str) -> ProtocolError {
    let request_id = request_id(text);
    let error = match serde_json::from_str::<serde_json::Value>(text) {
        Err(error) => ProtocolError::new(ErrorCode::BadJson, format!("not valid JSON: {error}")),
        Ok(_) => {
            let message_type = message_type(text).unwrap_or_default();
            let mut deserializer = serde_json::Deserializer::from_str(text);
            let result: Result<(), serde_path_to_error::Error<serde_json::Error>> =
                match message_type.as_str() {
                    "register" => typed::<RegisterWire>(&mut deserializer),
                    "new" => typed::<NewWire>(&mut deserializer),
                    "ack" => typed::<AckWire>(&mut deserializer),
                    "nack" => typed::<NackWire>(&mut deserializer),
                    "query" => typed::<QueryWire>(&mut deserializer),
                    _ => typed::<ConsistencyWire>(&mut deserializer),
                };
            match result {
                Err(error) => describe(error),
                Ok(()) => ProtocolError::invalid("the message does not match its message_type"),
            }
        }
    };
    error.with_request_id(request_id)
}

fn typed<T: DeserializeOwned>(
    deserializer: &mut serde_json::Deserializer<serde_json::de::StrRead<'_>>,
) -> Result<(), serde_path_to_error::Error<serde_json::Error>> {
    serde_path_to_error::deserialize::<_, T>(deserializer).map(|_| ())
}

fn describe(error: serde_path_to_error::Error<serde_json::Error>) -> ProtocolError {
    let path = error.path().to_string();
    let inner = error.into_inner().to_string();
    // serde_json appends " at line 1 column 57": noise for a one-line frame.
    let inner = inner.split(" at line ").next().unwrap_or(&inner).to_owned();
    if let Some(field) = inner
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        let at = if path == "." {
            field.to_owned()
        } else {
            format!("{path}.{field}")
        };
        return ProtocolError::invalid(format!("{at} is required"));
    }
    ProtocolError::invalid(format!("{path}: {inner}"))
}

/// The frame's `request_id`, when it has a readable one.
fn request_id(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct WithRequestId {
        request_id: Option<serde_json::Value>,
    }
    match serde_json::from_str::<WithRequestId>(text)
        .ok()?
        .request_id?
    {
        serde_json::Value::String(id) if id.chars().count() <= 128 => Some(id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ConsistencyValue, EventTypes, Mode, QueryStart};

    fn parse_ok(text: &str) -> ClientMessage {
        parse_client_message(text, &Limits::default()).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn parse_err(text: &str) -> ProtocolError {
        match parse_client_message(text, &Limits::default()) {
            Ok(message) => panic!("{text} parsed as {message:?}"),
            Err(error) => error,
        }
    }

    #[test]
    fn register_in_both_modes_and_with_every_type() {
        let ClientMessage::Register(register) = parse_ok(
            r#"{"message_type":"register","client_type":"accounts","event_types":["PendingTransaction","AccountCreationRequest"],"mode":"consume"}"#,
        ) else {
            panic!("not a register")
        };
        assert_eq!(register.client_type, "accounts");
        assert_eq!(register.mode, Mode::Consume);
        assert!(register.event_types.contains("PendingTransaction"));

        let ClientMessage::Register(register) = parse_ok(
            r#"{"event_types":["*"],"client_type":"web","message_type":"register","mode":"observe"}"#,
        ) else {
            panic!("not a register")
        };
        assert_eq!(register.mode, Mode::Observe);
        assert_eq!(register.event_types, EventTypes::All);
    }

    #[test]
    fn register_defaults_to_consume() {
        let ClientMessage::Register(register) =
            parse_ok(r#"{"message_type":"register","client_type":"a","event_types":["X"]}"#)
        else {
            panic!("not a register")
        };
        assert_eq!(register.mode, Mode::Consume);
    }

    #[test]
    fn register_rejections() {
        let error = parse_err(
            r#"{"message_type":"register","client_type":"bad name","event_types":["X"]}"#,
        );
        assert_eq!(error.code, ErrorCode::InvalidField);
        assert!(
            error.message.starts_with("client_type must be"),
            "{}",
            error.message
        );

        let error = parse_err(r#"{"message_type":"register","client_type":"a","event_types":[]}"#);
        assert!(
            error.message.contains("must not be empty"),
            "{}",
            error.message
        );

        let error = parse_err(
            r#"{"message_type":"register","client_type":"a","event_types":["X"],"mode":"watch"}"#,
        );
        assert_eq!(error.code, ErrorCode::InvalidField);
        assert!(error.message.starts_with("mode:"), "{}", error.message);

        let error = parse_err(r#"{"message_type":"register","event_types":["X"]}"#);
        assert_eq!(error.message, "client_type is required");
    }

    #[test]
    fn new_with_explicit_implicit_and_absent_values() {
        let ClientMessage::New(new) = parse_ok(
            r#"{"message_type":"new","request_id":"r-17","events":[
                {"event_id":"0193a7c0-0000-7000-8000-000000000001","event_type":"ConfirmedDebit",
                 "consistency":{"key":"acc-7","value":4},"correlation_id":"0193a7c0-0000-7000-8000-000000000002",
                 "causation_id":"0193a7c0-0000-7000-8000-000000000003","data":{"account_id":7,"amount":"30.00"}},
                {"event_type":"ConfirmedCredit","consistency":{"key":"acc-8","value":"*"},"data":null},
                {"event_type":"ConfirmedCredit","consistency":{"key":"acc-9"},"data":[1,2]}]}"#,
        ) else {
            panic!("not a new")
        };
        assert_eq!(new.request_id, "r-17");
        assert_eq!(new.events.len(), 3);
        assert_eq!(
            new.events[0].consistency.value,
            ConsistencyValue::Explicit(4)
        );
        assert_eq!(new.events[1].consistency.value, ConsistencyValue::Implicit);
        assert_eq!(new.events[2].consistency.value, ConsistencyValue::Implicit);
        assert_eq!(
            new.events[0].data.get(),
            r#"{"account_id":7,"amount":"30.00"}"#
        );
    }

    #[test]
    fn new_rejections_name_the_field_and_keep_the_request_id() {
        let error = parse_err(
            r#"{"message_type":"new","request_id":"r-18","events":[{"event_type":"A","consistency":{"key":"k","value":-1},"data":{}}]}"#,
        );
        assert_eq!(error.code, ErrorCode::InvalidField);
        assert_eq!(error.request_id.as_deref(), Some("r-18"));
        assert!(
            error.message.starts_with("events[0].consistency.value:")
                && error
                    .message
                    .contains("expected a non-negative integer or \"*\""),
            "{}",
            error.message
        );

        let error = parse_err(
            r#"{"message_type":"new","request_id":"r","events":[{"event_type":"A","consistency":{"key":"k"}}]}"#,
        );
        assert_eq!(error.message, "events[0].data is required");

        let error = parse_err(
            r#"{"message_type":"new","request_id":"r","events":[{"event_type":"A","consistency":{"key":""},"data":1}]}"#,
        );
        assert_eq!(
            error.message,
            "events[0].consistency.key must be 1 to 256 characters"
        );

        let error = parse_err(
            r#"{"message_type":"new","request_id":"r","events":[{"event_type":"A","event_id":"nope","consistency":{"key":"k"},"data":1}]}"#,
        );
        assert!(
            error.message.starts_with("events[0].event_id:"),
            "{}",
            error.message
        );

        let error = parse_err(
            r#"{"message_type":"new","request_id":"r","events":[{"event_type":"A","consistency":{"key":"a\u0000b"},"data":1}]}"#,
        );
        assert_eq!(
            error.message,
            "events[0].consistency.key must not contain the NUL character"
        );

        let error = parse_err(r#"{"message_type":"new","request_id":"r","events":[]}"#);
        assert_eq!(error.message, "events must hold at least one event");

        let long = "x".repeat(129);
        let error = parse_err(&format!(
            r#"{{"message_type":"new","request_id":"{long}","events":[{{"event_type":"A","consistency":{{"key":"k"}},"data":1}}]}}"#
        ));
        assert_eq!(error.message, "request_id must be at most 128 characters");
        assert_eq!(error.request_id, None);
    }

    #[test]
    fn new_events_sharing_a_key_carry_consecutive_values() {
        let ok = r#"{"message_type":"new","request_id":"r","events":[
            {"event_type":"A","consistency":{"key":"k","value":3},"data":1},
            {"event_type":"A","consistency":{"key":"k","value":4},"data":1},
            {"event_type":"A","consistency":{"key":"k","value":"*"},"data":1}]}"#;
        parse_ok(ok);
        let error = parse_err(
            r#"{"message_type":"new","request_id":"r","events":[
            {"event_type":"A","consistency":{"key":"k","value":3},"data":1},
            {"event_type":"A","consistency":{"key":"k","value":5},"data":1}]}"#,
        );
        assert!(
            error
                .message
                .starts_with("events[1].consistency.value must be 4"),
            "{}",
            error.message
        );
    }

    #[test]
    fn new_refuses_an_event_id_twice() {
        let error = parse_err(
            r#"{"message_type":"new","request_id":"r","events":[
            {"event_id":"0193a7c0-0000-7000-8000-000000000001","event_type":"A","consistency":{"key":"a"},"data":1},
            {"event_id":"0193a7c0-0000-7000-8000-000000000001","event_type":"A","consistency":{"key":"b"},"data":1}]}"#,
        );
        assert!(error.message.contains("appears twice"), "{}", error.message);
    }

    #[test]
    fn too_many_events() {
        let events =
            vec![r#"{"event_type":"A","consistency":{"key":"k"},"data":1}"#; 1001].join(",");
        let error = parse_err(&format!(
            r#"{{"message_type":"new","request_id":"big","events":[{events}]}}"#
        ));
        assert_eq!(error.code, ErrorCode::TooManyEvents);
        assert_eq!(error.request_id.as_deref(), Some("big"));
    }

    #[test]
    fn ack_and_nack() {
        let ClientMessage::Ack(ack) = parse_ok(r#"{"message_type":"ack","positions":[1234,1235]}"#)
        else {
            panic!("not an ack")
        };
        assert_eq!(ack.positions, vec![1234, 1235]);
        let ClientMessage::Nack(nack) =
            parse_ok(r#"{"message_type":"nack","position":1236,"reason":"database unavailable"}"#)
        else {
            panic!("not a nack")
        };
        assert_eq!(nack.position, 1236);
        assert_eq!(nack.reason, "database unavailable");
        let ClientMessage::Nack(nack) =
            parse_ok(r#"{"message_type":"nack","position":1,"reason":"a\u0000b"}"#)
        else {
            panic!("not a nack")
        };
        assert_eq!(nack.reason, "ab", "NUL cannot be stored, so it is dropped");
        assert_eq!(
            parse_err(r#"{"message_type":"ack","positions":[0]}"#).message,
            "positions[0] must be a positive integer"
        );
        assert_eq!(
            parse_err(r#"{"message_type":"nack"}"#).message,
            "position is required"
        );
    }

    #[test]
    fn query_starts() {
        let ClientMessage::Query(query) = parse_ok(
            r#"{"message_type":"query","request_id":"q-1","event_types":["AccountCreated"],"since":"2026-11-28T09:00:00Z"}"#,
        ) else {
            panic!("not a query")
        };
        assert!(matches!(query.start, QueryStart::Since(Some(_))));
        let ClientMessage::Query(query) = parse_ok(
            r#"{"message_type":"query","request_id":"q-2","event_types":["*"],"after_position":10,"key":"acc-1","limit":5}"#,
        ) else {
            panic!("not a query")
        };
        assert_eq!(query.start, QueryStart::AfterPosition(10));
        assert_eq!(query.key.as_deref(), Some("acc-1"));
        assert_eq!(query.limit, Some(5));
    }

    #[test]
    fn query_rejections() {
        let both = parse_err(
            r#"{"message_type":"query","request_id":"q","event_types":["*"],"since":"*","after_position":1}"#,
        );
        assert_eq!(
            both.message,
            "a query gives exactly one of since and after_position"
        );
        assert_eq!(both.request_id.as_deref(), Some("q"));
        let neither = parse_err(r#"{"message_type":"query","request_id":"q","event_types":["*"]}"#);
        assert_eq!(neither.message, both.message);
        let since = parse_err(
            r#"{"message_type":"query","request_id":"q","event_types":["*"],"since":"now"}"#,
        );
        assert!(
            since.message.starts_with("since must be"),
            "{}",
            since.message
        );
        let limit = parse_err(
            r#"{"message_type":"query","request_id":"q","event_types":["*"],"since":"*","limit":0}"#,
        );
        assert_eq!(limit.message, "limit must be a positive integer");
    }

    #[test]
    fn consistency_requests() {
        let ClientMessage::Consistency(request) = parse_ok(
            r#"{"message_type":"consistency","request_id":"c-1","keys":["acc-7","acc-9"]}"#,
        ) else {
            panic!("not a consistency request")
        };
        assert_eq!(request.keys, vec!["acc-7", "acc-9"]);
        let error = parse_err(r#"{"message_type":"consistency","request_id":"c-2","keys":[]}"#);
        assert_eq!(error.message, "keys must hold 1 to 1000 keys");
        assert_eq!(error.request_id.as_deref(), Some("c-2"));
    }

    #[test]
    fn bad_json_unknown_types_and_non_objects() {
        assert_eq!(parse_err("{not json").code, ErrorCode::BadJson);
        assert_eq!(parse_err("[1,2]").code, ErrorCode::InvalidField);
        let unknown = parse_err(r#"{"message_type":"subscribe","request_id":"x-1"}"#);
        assert_eq!(unknown.code, ErrorCode::UnknownMessageType);
        assert_eq!(unknown.request_id.as_deref(), Some("x-1"));
        assert_eq!(
            parse_err(r#"{"request_id":"x"}"#).message,
            "message_type is missing"
        );
        assert_eq!(
            parse_err(r#"{"message_type":7}"#).message,
            "message_type must be a string"
        );
    }
}
