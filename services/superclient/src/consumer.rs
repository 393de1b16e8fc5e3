//! Live events: taken in batches, applied in one transaction per batch,
//! acknowledged after the commit.
//!
//! One commit costs an fsync (about 3 ms here), so committing per event
//! would cap a service near 300 events/s. Everything that has arrived is
//! taken at once (up to `max_batch`) and applied in one transaction. When
//! a batch fails, its events are applied one per transaction, so that only
//! the event at fault is nacked: the bus redelivers it after a back-off and
//! parks it after `max_deliveries`.

use bus::{
    client::{BusClient, Events},
    protocol::{DeliveredEvent, EventRecord},
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{applied, decide::DecideError, runtime::Ctx, service::Service};

pub(crate) async fn run<S: Service>(
    ctx: Ctx<S>,
    consumer: BusClient,
    mut events: Events,
    max_batch: usize,
    shutdown: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => break,
            event = events.next() => match event {
                Some(event) => event,
                None => break,
            },
        };
        let mut arrived = vec![first];
        arrived.extend(events.drain());
        for batch in arrived.chunks(max_batch.max(1)) {
            handle_batch(&ctx, &consumer, batch).await;
        }
    }
    consumer.close();
}

async fn handle_batch<S: Service>(ctx: &Ctx<S>, consumer: &BusClient, batch: &[DeliveredEvent]) {
    metrics::histogram!("superclient_batch_events").record(batch.len() as f64);
    match apply_in_one_transaction(ctx, batch).await {
        Ok(()) => {
            let _ = consumer.ack(batch.iter().map(|d| d.event.position).collect());
            metrics::counter!("superclient_events_handled_total", "outcome" => "ok")
                .increment(batch.len() as u64);
        }
        Err(error) if batch.len() == 1 => {
            let event = &batch[0].event;
            tracing::warn!(position = event.position, event_type = %event.event_type,
                correlation_id = %event.correlation_id, delivery = batch[0].delivery, %error,
                "could not handle the event; nacked");
            metrics::counter!("superclient_events_handled_total", "outcome" => "nacked")
                .increment(1);
            let _ = consumer.nack(event.position, error.to_string());
        }
        Err(error) => {
            tracing::info!(events = batch.len(), %error, "a batch failed; handling its events one by one");
            for delivered in batch {
                Box::pin(handle_batch(ctx, consumer, std::slice::from_ref(delivered))).await;
            }
        }
    }
}

async fn apply_in_one_transaction<S: Service>(
    ctx: &Ctx<S>,
    batch: &[DeliveredEvent],
) -> Result<(), DecideError> {
    let mut tx = ctx.db().begin().await?;
    // Facts first, then the commands, decided on state that includes them.
    // Events of one key are never both in a batch (the bus hands a key's
    // next event out only after the previous one is acknowledged), so this
    // reorders nothing that depends on order.
    let mut commands = Vec::new();
    for delivered in batch {
        let event = &delivered.event;
        if S::REACTS_TO.contains(&event.event_type.as_str()) {
            commands.push(event);
        } else {
            apply(ctx, &mut tx, event)
                .instrument(event_span(event))
                .await?;
        }
    }
    if !commands.is_empty() {
        let span = tracing::info_span!("reactions", events = commands.len());
        ctx.react_all(&mut tx, &commands).instrument(span).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn apply<S: Service>(
    ctx: &Ctx<S>,
    db: &mut sqlx::PgConnection,
    event: &EventRecord,
) -> Result<(), DecideError> {
    if applied::claim(db, event).await? {
        ctx.service().apply(db, event).await?;
    }
    Ok(())
}

pub(crate) fn event_span(event: &EventRecord) -> tracing::Span {
    tracing::info_span!(
        "event",
        position = event.position,
        event_type = %event.event_type,
        key = %event.consistency.key,
        correlation_id = %event.correlation_id,
    )
}
