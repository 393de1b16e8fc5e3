//! Reading the bus's messages on the client side.

use serde::de::DeserializeOwned;

use crate::protocol::{
    ConsistencyAnswer, DeliveredEvent, ErrorMessage, Rebuild, RebuildComplete, Receipt,
    Registration,
};

#[derive(Debug)]
pub enum ServerFrame {
    Registration(Registration),
    Receipt(Receipt),
    Event(DeliveredEvent),
    Rebuild(Rebuild),
    RebuildComplete(RebuildComplete),
    Consistency(ConsistencyAnswer),
    Error(ErrorMessage),
}

pub fn parse(text: &str) -> Result<ServerFrame, String> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        message_type: String,
    }
    // The bus always sends `message_type` first; read it off the front.
    let message_type = match text
        .strip_prefix("{\"message_type\":\"")
        .and_then(|rest| rest.split_once('"'))
    {
        Some((message_type, _)) => message_type.to_owned(),
        None => {
            serde_json::from_str::<Envelope>(text)
                .map_err(|e| e.to_string())?
                .message_type
        }
    };
    fn typed<T: DeserializeOwned>(text: &str) -> Result<T, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
    Ok(match message_type.as_str() {
        "registration" => ServerFrame::Registration(typed(text)?),
        "receipt" => ServerFrame::Receipt(typed(text)?),
        "event" => ServerFrame::Event(typed(text)?),
        "rebuild" => ServerFrame::Rebuild(typed(text)?),
        "rebuild_complete" => ServerFrame::RebuildComplete(typed(text)?),
        "consistency" => ServerFrame::Consistency(typed(text)?),
        "error" => ServerFrame::Error(typed(text)?),
        other => return Err(format!("unknown message_type {other:?}")),
    })
}
