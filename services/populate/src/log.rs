//! The whole event log, read through the bus's `query` with a token that
//! may read every banking event (the staff tools' token).

use bus::{
    client::{BusClient, ClientConfig, QueryFrom, QueryItem, QuerySpec},
    protocol::EventRecord,
};

/// The event types the checks read: every banking event but `UserCreated`,
/// which carries password hashes and no money.
pub const TYPES: &[&str] = events::BANKING_TYPES;

/// Every event of [`TYPES`], in position order.
pub async fn read(bus_url: &str, token: &str) -> anyhow::Result<Vec<EventRecord>> {
    let (client, _) = BusClient::connect(ClientConfig::new(bus_url).token(token)).await?;
    let mut answer = client.query(QuerySpec {
        event_types: TYPES.iter().map(|t| (*t).to_owned()).collect(),
        start: QueryFrom::AfterPosition(0),
        key: None,
        limit: None,
    })?;
    let mut events = Vec::new();
    let outcome = loop {
        match answer.next().await {
            Some(Ok(QueryItem::Batch(batch))) => events.extend(batch),
            Some(Ok(QueryItem::Complete { .. })) => break Ok(events),
            Some(Err(error)) => break Err(error.into()),
            None => {
                break Err(anyhow::anyhow!(
                    "the bus ended the query without completing it"
                ));
            }
        }
    };
    client.close();
    outcome
}
