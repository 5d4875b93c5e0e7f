//! Logging setup: one JSON object per line, as CloudWatch Logs Insights reads it.

use tracing::{Level, Subscriber};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::EnvFilter;

/// Targets (module paths) of our own code: these log what `RUST_LOG` asks for. Our lines
/// carry ids only, never a secret, a header or a body.
const OWN_TARGETS: &[&str] = &[
    "shared",
    "infra",
    "localdb",
    "icadmin",
    "local_stack",
    "bench",
    REQUEST_LINE_TARGET,
];

/// The target of the one line each request writes: the audit record the request log is
/// built from, so it is written whatever `RUST_LOG` says.
pub const REQUEST_LINE_TARGET: &str = "request_log";

/// Whether an event of `target` at `level` may be written, whatever `RUST_LOG` says. The
/// crates under us (the Lambda runtime, lambda_http, hyper, the AWS SDK and its smithy
/// runtime) log requests and responses — headers such as `Authorization`, and DynamoDB
/// items with customer data — at debug and trace; they are held to warnings and errors.
pub fn may_log(target: &str, level: &Level) -> bool {
    let own = OWN_TARGETS.iter().any(|own| {
        target == *own
            || target
                .strip_prefix(own)
                .is_some_and(|rest| rest.starts_with("::"))
    });
    own || *level <= Level::WARN
}

/// `filter`, with the request line always on (a later directive for the same target would
/// replace ours, so ours goes last).
fn always_request_lines(filter: EnvFilter) -> EnvFilter {
    match format!("{REQUEST_LINE_TARGET}=info").parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}

/// The subscriber every function uses, writing to `writer` (tests pass a buffer).
pub fn json_subscriber<W>(writer: W, filter: EnvFilter) -> impl Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(always_request_lines(filter))
        .with_writer(writer)
        .finish()
        .with(filter_fn(|meta| may_log(meta.target(), meta.level())))
}

/// Installs the JSON subscriber on stderr. `RUST_LOG` overrides the `info` default.
pub fn init() {
    init_with(std::io::stderr);
}

/// Installs the JSON subscriber writing to `writer` (the local stack tees its lines into
/// the request-log writer, as CloudWatch Logs does deployed).
pub fn init_with<W>(writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests, the local stack) keeps the first subscriber: ignoring is right.
    let _ = tracing::subscriber::set_global_default(json_subscriber(writer, filter));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn no_rust_log_setting_lets_dependencies_log_headers() {
        for setting in [
            "trace",
            "lambda_runtime=trace,lambda_http=trace,aws_smithy_runtime=trace,hyper=trace,shared=trace",
        ] {
            let buffer = Buffer::default();
            let sink = buffer.clone();
            let subscriber = json_subscriber(move || sink.clone(), EnvFilter::new(setting));
            tracing::subscriber::with_default(subscriber, || {
                macro_rules! chatter {
                    ($($target:literal),*) => {$(
                        tracing::trace!(target: $target, "authorization: Bearer ic_live_TRACE");
                        tracing::debug!(target: $target, "authorization: Bearer ic_live_DEBUG");
                        tracing::info!(target: $target, "body: {{\"email\":\"jane@example.com\"}}");
                    )*};
                }
                chatter!("lambda_runtime", "lambda_http", "aws_smithy_runtime::client", "hyper", "h2");
                tracing::warn!(target: "hyper", "a dependency's warning");
                tracing::trace!(target: "shared::edge::http", "our own trace line");
            });
            let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
            assert!(!text.contains("ic_live_"), "{setting}: {text}");
            assert!(!text.contains("jane@example.com"), "{setting}: {text}");
            assert!(text.contains("a dependency's warning"), "{setting}: {text}");
            assert!(text.contains("our own trace line"), "{setting}: {text}");
        }
    }

    #[test]
    fn the_request_line_is_written_whatever_rust_log_says() {
        for setting in ["warn", "error", "off", "request_log=off", "shared=off"] {
            let buffer = Buffer::default();
            let sink = buffer.clone();
            let subscriber = json_subscriber(move || sink.clone(), EnvFilter::new(setting));
            tracing::subscriber::with_default(subscriber, || {
                tracing::info!(target: "request_log", key_id = "key_1", "request");
                tracing::info!(target: "shared::other", "chatter");
            });
            let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
            assert!(text.contains("key_1"), "{setting}: {text}");
            assert!(!text.contains("chatter"), "{setting}: {text}");
        }
    }

    #[test]
    fn own_targets_are_matched_by_crate_not_by_prefix() {
        assert!(may_log("shared::edge::http", &Level::TRACE));
        assert!(may_log("shared", &Level::DEBUG));
        assert!(!may_log("sharedstate", &Level::DEBUG));
        assert!(!may_log("lambda_runtime::layers", &Level::INFO));
        assert!(may_log("lambda_runtime", &Level::ERROR));
    }
}
