//! The local stack's stand-in for CloudWatch Logs' subscription filters: its log lines go
//! to stderr as ever, and the request lines in which a key was identified (the template's
//! filter pattern) are batched into subscription events and handed to the log writer's own
//! handler — the same code the deployed `LogWriterFunction` runs.

use std::io::Write;
use std::time::Duration;

use shared::request_log::table::RequestLogTable;
use shared::request_log::writer::{handle, passes_filter, subscription_event};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tracing_subscriber::fmt::MakeWriter;

/// How long lines gather before a batch is written (CloudWatch Logs batches too).
const BATCH_WINDOW_MILLIS: u64 = 500;

/// A `MakeWriter` that writes each log line to stderr and also sends it on.
#[derive(Clone)]
pub struct Tee(UnboundedSender<String>);

/// One line being written.
pub struct TeeLine {
    sink: UnboundedSender<String>,
    buffer: Vec<u8>,
}

pub fn tee() -> (Tee, UnboundedReceiver<String>) {
    let (tx, rx) = unbounded_channel();
    (Tee(tx), rx)
}

impl<'a> MakeWriter<'a> for Tee {
    type Writer = TeeLine;
    fn make_writer(&'a self) -> Self::Writer {
        TeeLine {
            sink: self.0.clone(),
            buffer: Vec::new(),
        }
    }
}

impl Write for TeeLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for TeeLine {
    fn drop(&mut self) {
        let _ = std::io::stderr().write_all(&self.buffer);
        let text = String::from_utf8_lossy(&self.buffer);
        for line in text.lines().filter(|l| passes_filter(l)) {
            // A stack shutting down has no one to receive: dropping the line is right.
            let _ = self.sink.send(line.to_owned());
        }
    }
}

/// The function that writes the request log, deployed (its logical id in template.yaml).
pub const LOG_WRITER_FUNCTION: &str = "LogWriterFunction";

/// Writes the request lines that arrive on `lines` into `table`, batch by batch, until
/// the sending side is gone.
pub async fn feed(mut lines: UnboundedReceiver<String>, table: RequestLogTable) {
    while let Some(first) = lines.recv().await {
        let mut batch = vec![first];
        let window = tokio::time::sleep(Duration::from_millis(BATCH_WINDOW_MILLIS));
        tokio::pin!(window);
        loop {
            tokio::select! {
                _ = &mut window => break,
                more = lines.recv() => match more {
                    Some(line) => batch.push(line),
                    None => break,
                },
            }
        }
        let now = chrono::Utc::now().timestamp_millis();
        let events: Vec<(i64, String)> = batch.into_iter().map(|l| (now, l)).collect();
        let result = match subscription_event("/aws/lambda/local-stack", &events) {
            Ok(event) => handle(&table, &event).await,
            Err(err) => Err(err),
        };
        if let Err(err) = result {
            // Not through tracing: a line about the feed must not feed itself.
            eprintln!("local-stack: request log batch not stored: {err}");
        }
    }
}
