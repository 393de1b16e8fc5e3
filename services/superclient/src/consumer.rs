//! Live events: taken in batches, applied in one transaction per batch,
//! acknowledged after the commit.
//!
//! One commit costs an fsync (about 3 ms here), so committing per event
//! would cap a service near 300 events/s. Everything that has arrived is
//! taken at once (up to `max_batch`): the facts are applied in one
//! transaction (which also moves the rebuild mark, so a restart reads
//! little history again), then the commands are reacted to. When the facts
//! fail together, they are applied one per transaction, so that only the
//! event at fault is nacked: the bus redelivers it after a back-off and
//! parks it after `max_deliveries`, holding its key's later events back.

use bus::{
    client::{BusClient, Events},
    protocol::{DeliveredEvent, EventRecord},
};
use tokio_util::sync::CancellationToken;

use crate::{
    applied,
    apply::{ApplyError, Batch},
    context::Ctx,
    service::Service,
};

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
    let again = batch
        .iter()
        .filter(|delivered| delivered.delivery > 1)
        .count();
    metrics::counter!("superclient_redeliveries_total").increment(again as u64);
    // Facts first, then the commands, decided on state that includes them.
    // Events of one key are never both in a batch (the bus hands a key's
    // next event out only after the previous one is acknowledged), so this
    // reorders nothing that depends on order.
    let (skipped, batch): (Vec<&DeliveredEvent>, Vec<&DeliveredEvent>) =
        batch.iter().partition(|delivered| delivered.skipped);
    for delivered in skipped {
        step_over(ctx, consumer, &delivered.event).await;
    }
    let (commands, facts): (Vec<&DeliveredEvent>, Vec<&DeliveredEvent>) =
        batch.into_iter().partition(|delivered| {
            ctx.service()
                .reacts_to()
                .contains(&delivered.event.event_type.as_str())
        });
    if !facts.is_empty() {
        let events: Vec<EventRecord> = facts.iter().map(|d| d.event.clone()).collect();
        match apply_live(ctx, &events).await {
            Ok(()) => settled(consumer, &events),
            Err(error) if events.len() > 1 => {
                tracing::info!(events = events.len(), %error, "a batch failed; applying its events one by one");
                for event in &events {
                    match apply_live(ctx, std::slice::from_ref(event)).await {
                        Ok(()) => settled(consumer, std::slice::from_ref(event)),
                        Err(error) => failed(consumer, event, &error.to_string()),
                    }
                }
            }
            Err(error) => failed(consumer, &events[0], &error.to_string()),
        }
    }
    if !commands.is_empty() {
        let events: Vec<EventRecord> = commands.iter().map(|d| d.event.clone()).collect();
        for (event, outcome) in events.iter().zip(ctx.react_all(&events).await) {
            match outcome {
                Ok(()) => settled(consumer, std::slice::from_ref(event)),
                Err(error) => failed(consumer, event, &error.to_string()),
            }
        }
    }
}

/// Applies live events, moving the rebuild mark with them: everything of
/// the service's types before them is applied or still owed by the bus.
async fn apply_live<S: Service>(ctx: &Ctx<S>, events: &[EventRecord]) -> Result<(), ApplyError> {
    ctx.apply_gap_free(Batch {
        events,
        mark: events.iter().map(|event| event.position).max(),
        ..Batch::default()
    })
    .await
}

/// An event staff skipped: recorded (so that a catch-up or a rebuild steps
/// over it too), then claimed, never applied or reacted to.
async fn step_over<S: Service>(ctx: &Ctx<S>, consumer: &BusClient, event: &EventRecord) {
    let outcome = async {
        let mut db = ctx.db().acquire().await?;
        let key = event.consistency.key.as_str();
        let last = applied::peek(&mut db, &[key]).await?;
        if applied::verdict(last[key], event) == applied::Verdict::Applied {
            // Applied here before the skip (a catch-up found it appliable):
            // the tables keep it, and it is not recorded as skipped.
            tracing::error!(position = event.position, key, event_type = %event.event_type,
                "staff skipped an event this service had applied already; its effects stay");
            return Ok(());
        }
        tracing::warn!(position = event.position, key, event_type = %event.event_type,
            "staff skipped this event; stepping over it");
        applied::record_skipped(&mut db, &[event]).await?;
        drop(db);
        let as_command = [event];
        let command = ctx
            .service()
            .reacts_to()
            .contains(&event.event_type.as_str());
        ctx.apply_gap_free(Batch {
            events: std::slice::from_ref(event),
            commands: if command { &as_command } else { &[] },
            ..Batch::default()
        })
        .await
    };
    match outcome.await {
        Ok(()) => settled(consumer, std::slice::from_ref(event)),
        Err(error) => failed(consumer, event, &error.to_string()),
    }
}

fn settled(consumer: &BusClient, events: &[EventRecord]) {
    let _ = consumer.ack(events.iter().map(|event| event.position).collect());
    metrics::counter!("superclient_events_handled_total", "outcome" => "ok")
        .increment(events.len() as u64);
}

fn failed(consumer: &BusClient, event: &EventRecord, reason: &str) {
    tracing::warn!(position = event.position, event_type = %event.event_type,
        key = %event.consistency.key, correlation_id = %event.correlation_id, %reason,
        "could not handle the event; nacked");
    metrics::counter!("superclient_events_handled_total", "outcome" => "nacked").increment(1);
    let _ = consumer.nack(event.position, reason);
}
