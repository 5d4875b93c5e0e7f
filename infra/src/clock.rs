//! How far this machine's clock is from AWS's, measured against the `Date` header of
//! DynamoDB responses. The operator tool stamps `updated_at` with its own clock; a poller
//! whose watermark is AWS time would miss a change stamped by a clock that runs behind, so
//! the tool refuses to write when the skew exceeds `MAX_SKEW_MILLIS`.
//!
//! `Date` has one-second resolution. Each response says: the server's clock read some time
//! in [Date, Date + 1 s) while ours read some time between sending and receiving. So the
//! skew (ours − theirs) lies in [sent − Date − 1 s, received − Date]. Intersecting those
//! intervals over responses spread across a second boundary narrows it to about a round trip.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::{ConfigBag, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use chrono::{DateTime, Utc};

pub const MAX_SKEW_MILLIS: i64 = 1_000;
/// Responses sampled at most, and how far apart.
const MAX_SAMPLES: usize = 16;
const SAMPLE_SPACING_MILLIS: u64 = 90;

/// One response: when we sent, when we received (our clock), and its `Date` (theirs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub sent: DateTime<Utc>,
    pub received: DateTime<Utc>,
    pub date: DateTime<Utc>,
}

/// What the samples so far prove about the skew, in milliseconds (ours − AWS's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Surely within ±`MAX_SKEW_MILLIS`.
    Within { low: i64, high: i64 },
    /// Surely beyond it.
    Beyond { low: i64, high: i64 },
    /// Not yet decided (or the samples contradict each other, which a clock step causes).
    Unsure,
}

fn floor_millis(d: chrono::TimeDelta) -> i64 {
    d.num_nanoseconds()
        .map_or_else(|| d.num_milliseconds(), |n| n.div_euclid(1_000_000))
}

fn ceil_millis(d: chrono::TimeDelta) -> i64 {
    d.num_nanoseconds()
        .map_or_else(|| d.num_milliseconds(), |n| -(-n).div_euclid(1_000_000))
}

/// The skew interval the samples allow, and what it proves.
pub fn judge(samples: &[Sample]) -> Verdict {
    let mut low = i64::MIN;
    let mut high = i64::MAX;
    for s in samples {
        // Rounded outwards, so the interval always holds the true skew.
        low = low.max(floor_millis(s.sent - s.date) - 1_000);
        high = high.min(ceil_millis(s.received - s.date));
    }
    if samples.is_empty() || low > high {
        return Verdict::Unsure;
    }
    if low >= -MAX_SKEW_MILLIS && high <= MAX_SKEW_MILLIS {
        Verdict::Within { low, high }
    } else if low > MAX_SKEW_MILLIS || high < -MAX_SKEW_MILLIS {
        Verdict::Beyond { low, high }
    } else {
        Verdict::Unsure
    }
}

/// An SDK interceptor that keeps the `Date` of the last response.
#[derive(Debug, Clone, Default)]
pub struct DateRecorder(Arc<Mutex<Option<DateTime<Utc>>>>);

impl DateRecorder {
    pub fn take(&self) -> Option<DateTime<Utc>> {
        self.0.lock().ok().and_then(|mut d| d.take())
    }
}

impl Intercept for DateRecorder {
    fn name(&self) -> &'static str {
        "DateRecorder"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let date = context
            .response()
            .headers()
            .get("date")
            .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
            .map(|d| d.with_timezone(&Utc));
        if let Ok(mut slot) = self.0.lock() {
            *slot = date;
        }
        Ok(())
    }
}

/// Samples `probe` (a cheap DynamoDB read through a client carrying `recorder`) until the
/// skew is decided. `Ok` with the interval when within bounds; `Err` saying why not.
pub async fn check_skew<F, Fut>(recorder: &DateRecorder, mut probe: F) -> Result<(i64, i64), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut samples = Vec::new();
    for _ in 0..MAX_SAMPLES {
        let sent = Utc::now();
        probe().await?;
        let received = Utc::now();
        let date = recorder.take().ok_or(
            "DynamoDB's response had no Date header, so this machine's clock skew cannot be \
             measured; refusing to stamp updated_at with an unchecked clock",
        )?;
        samples.push(Sample {
            sent,
            received,
            date,
        });
        match judge(&samples) {
            Verdict::Within { low, high } => return Ok((low, high)),
            Verdict::Beyond { low, high } => {
                return Err(format!(
                    "this machine's clock is {low}..{high} ms off AWS time (more than \
                     {MAX_SKEW_MILLIS} ms); fix it (e.g. enable NTP) before moving customers, \
                     or pollers could miss the change"
                ))
            }
            Verdict::Unsure => {
                tokio::time::sleep(Duration::from_millis(SAMPLE_SPACING_MILLIS)).await
            }
        }
    }
    Err(format!(
        "could not confirm this machine's clock is within {MAX_SKEW_MILLIS} ms of AWS time \
         (responses too slow or contradictory); refusing to write"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_790_000_000_000 + ms).unwrap()
    }

    /// A server whose clock reads ours minus `skew_ms`, answering after `rtt_ms / 2`.
    fn sample(sent_ms: i64, rtt_ms: i64, skew_ms: i64) -> Sample {
        let server_ms = sent_ms + rtt_ms / 2 - skew_ms;
        let date_ms = server_ms.div_euclid(1_000) * 1_000;
        Sample {
            sent: at(sent_ms),
            received: at(sent_ms + rtt_ms),
            date: at(date_ms),
        }
    }

    fn judge_series(skew_ms: i64) -> Verdict {
        let samples: Vec<Sample> = (0..14).map(|i| sample(i * 90, 20, skew_ms)).collect();
        judge(&samples)
    }

    #[test]
    fn a_synchronised_clock_passes() {
        assert!(matches!(judge_series(0), Verdict::Within { .. }));
        assert!(matches!(judge_series(700), Verdict::Within { .. }));
        assert!(matches!(judge_series(-700), Verdict::Within { .. }));
    }

    #[test]
    fn a_clock_off_by_more_than_a_second_is_refused() {
        for skew in [1_300, -1_300, 5_000, -60_000] {
            assert!(
                matches!(judge_series(skew), Verdict::Beyond { .. }),
                "{skew}: {:?}",
                judge_series(skew)
            );
        }
    }

    #[test]
    fn the_interval_always_holds_the_true_skew() {
        for skew in [-2_500, -1_001, -999, -250, 0, 1, 333, 999, 1_001, 2_500] {
            let mut samples = Vec::new();
            for i in 0..14 {
                samples.push(sample(i * 90 + 17, 30, skew));
                let (mut low, mut high) = (i64::MIN, i64::MAX);
                for s in &samples {
                    low = low.max(floor_millis(s.sent - s.date) - 1_000);
                    high = high.min(ceil_millis(s.received - s.date));
                }
                assert!(low <= skew && skew <= high, "{skew} not in {low}..{high}");
                match judge(&samples) {
                    Verdict::Within { .. } => assert!(skew.abs() <= MAX_SKEW_MILLIS, "{skew}"),
                    Verdict::Beyond { .. } => assert!(skew.abs() > MAX_SKEW_MILLIS, "{skew}"),
                    Verdict::Unsure => {}
                }
            }
        }
    }

    #[test]
    fn rounding_is_outwards() {
        let d = chrono::TimeDelta::nanoseconds(-1_500_000);
        assert_eq!((floor_millis(d), ceil_millis(d)), (-2, -1));
        let d = chrono::TimeDelta::nanoseconds(1_500_000);
        assert_eq!((floor_millis(d), ceil_millis(d)), (1, 2));
    }

    #[test]
    fn one_sample_is_rarely_enough_and_none_decides_nothing() {
        assert_eq!(judge(&[]), Verdict::Unsure);
        let contradictory = [sample(0, 10, 0), sample(100, 10, 5_000)];
        assert_eq!(judge(&contradictory), Verdict::Unsure);
    }
}
