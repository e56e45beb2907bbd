//! API keys: their use recorded off the request path and written in batches, and the budget
//! of cold key look-ups.

use super::{PolicyCache, StoreError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket: at most `rate` acquisitions per second, bursts up to `rate`.
pub(super) struct TokenBucket {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub(super) fn new(rate: u32) -> Self {
        let rate = f64::from(rate.max(1));
        TokenBucket {
            rate,
            state: Mutex::new((rate, Instant::now())),
        }
    }

    pub(super) fn try_acquire(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(s.1).as_secs_f64() * self.rate;
        *s = ((s.0 + refill).min(self.rate), now);
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

impl PolicyCache {
    /// Notes that a key was used; written in batches by `flush_api_key_use` (never on the
    /// request path).
    pub fn record_api_key_use(&self, key_id: &str) {
        let mut t = self.inner.touched.lock().unwrap_or_else(|p| p.into_inner());
        if t.len() < 100_000 && !t.contains(key_id) {
            t.insert(key_id.to_owned());
        }
    }

    /// Writes the recorded key uses (`last_used_at = now`); on error they are kept for the next
    /// flush.
    pub async fn flush_api_key_use(&self) -> Result<usize, StoreError> {
        let batch: Vec<String> = {
            let mut t = self.inner.touched.lock().unwrap_or_else(|p| p.into_inner());
            t.drain().collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        match self
            .inner
            .store
            .touch_api_keys(&batch, chrono::Utc::now())
            .await
        {
            Ok(()) => Ok(batch.len()),
            Err(e) => {
                let mut t = self.inner.touched.lock().unwrap_or_else(|p| p.into_inner());
                t.extend(batch);
                Err(e)
            }
        }
    }

    /// Spawns a task flushing key uses every `every`.
    pub fn spawn_api_key_use_flusher(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = this.flush_api_key_use().await {
                    tracing::warn!(error = %e, "recording api key use failed");
                }
            }
        })
    }
}
