//! Saving a subscription's progress: its acknowledgement watermark, the
//! acks above it, failures and parked events.

use super::Actor;

/// How long a stopping subscription tries to save its progress.
const STOP_SAVE_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);
use crate::store::{self, subscriptions::Progress};

impl Actor {
    pub(super) fn watermark(&self) -> i64 {
        self.outstanding
            .first()
            .map_or(self.cursor, |first| first - 1)
    }

    /// Starts saving progress in the background, one save at a time.
    pub(super) fn save(&mut self) {
        if let Some(saving) = &self.saving {
            if !saving.is_finished() {
                return;
            }
            let saving = self.saving.take().expect("checked above");
            let in_save = std::mem::take(&mut self.in_save);
            match futures_util::FutureExt::now_or_never(saving) {
                Some(Ok(Ok(()))) => self.saved_watermark = in_save.acked_through,
                other => {
                    tracing::warn!(client_type = %self.client_type, ?other, "could not save delivery progress; retrying");
                    self.progress = merge(in_save, std::mem::take(&mut self.progress));
                }
            }
        }
        let watermark = self.watermark();
        if self.progress.is_empty() && watermark == self.saved_watermark {
            return;
        }
        let mut progress = std::mem::take(&mut self.progress);
        progress.acked_through = watermark;
        self.in_save = progress.clone();
        let pool = self.pool.clone();
        let client_type = self.client_type.clone();
        self.saving = Some(tokio::spawn(async move {
            store::subscriptions::save_progress(&pool, &client_type, &progress).await
        }));
    }

    /// Waits for the save in flight, if any, and accounts for its result.
    async fn finish_saving(&mut self) -> Result<(), store::StoreError> {
        let Some(saving) = self.saving.take() else {
            return Ok(());
        };
        let result = saving.await;
        let in_save = std::mem::take(&mut self.in_save);
        match result {
            Ok(Ok(())) => {
                self.saved_watermark = in_save.acked_through;
                Ok(())
            }
            Ok(Err(error)) => {
                self.progress = merge(in_save, std::mem::take(&mut self.progress));
                Err(error)
            }
            Err(error) => {
                self.progress = merge(in_save, std::mem::take(&mut self.progress));
                Err(store::StoreError::Database(sqlx::Error::Protocol(format!(
                    "the progress saver failed: {error}"
                ))))
            }
        }
    }

    /// Saves everything so far, now: what a staff decision reads (the
    /// events blocked behind a parked one) must be in the store first.
    pub(super) async fn flush(&mut self) -> Result<(), store::StoreError> {
        self.finish_saving().await?;
        self.save();
        self.finish_saving().await
    }

    /// Saves what is left before the bus stops, trying for a few seconds:
    /// with the database away, stopping must not wait for it. What is not
    /// saved is delivered again after the restart (at-least-once).
    pub(super) async fn stop(&mut self) {
        let deadline = tokio::time::Instant::now() + STOP_SAVE_BUDGET;
        loop {
            match tokio::time::timeout_at(deadline, self.flush()).await {
                Ok(Ok(())) => return,
                Ok(Err(_)) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                _ => {
                    tracing::error!(
                        client_type = %self.client_type,
                        "stopping without saving delivery progress; the unsaved acknowledgements' events will be delivered again"
                    );
                    return;
                }
            }
        }
    }
}

/// Progress that failed to save, with what came after it.
fn merge(mut earlier: Progress, later: Progress) -> Progress {
    earlier.absorb(later);
    earlier
}
