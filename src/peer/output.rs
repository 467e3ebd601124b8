//! The peer's stdout: one writer task serialises every result, error and
//! event line (docs/PROTOCOL.md), so lines never interleave.

use crate::protocol::control::{ErrorCode, Event};
use serde::Serialize;
use serde_json::{Value, json};
use std::io::Write;
use tokio::sync::mpsc;

/// Serialises every stdout line through one writer so lines never interleave.
#[derive(Clone)]
pub struct Output {
    tx: mpsc::UnboundedSender<Option<String>>,
}

impl Output {
    pub fn new() -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Option<String>>();
        let writer = tokio::task::spawn_blocking(move || {
            // One buffer for the writer's life: the lines queued meanwhile
            // go out with each line in one write, where a download of
            // 100,000 small files sent as many chunk events, a syscall each.
            let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout());
            while let Some(Some(line)) = rx.blocking_recv() {
                let mut last = false;
                let mut sent = writeln!(out, "{line}");
                while sent.is_ok() {
                    match rx.try_recv() {
                        Ok(Some(line)) => sent = writeln!(out, "{line}"),
                        Ok(None) => {
                            last = true;
                            break;
                        }
                        Err(_) => break,
                    }
                }
                // A closed stdout means our controller is gone; nothing to tell.
                if sent.and_then(|_| out.flush()).is_err() || last {
                    break;
                }
            }
        });
        (Self { tx }, writer)
    }

    fn line(&self, value: Value) {
        let _ = self.tx.send(Some(value.to_string()));
    }

    pub fn event(&self, name: Event, data: Value) {
        self.line(json!({ "type": "event", "event": name.as_str(), "data": data }));
    }

    /// An event whose data is serialised straight from `data`, with no
    /// `Value` tree in between: a 100,000-file `got-game-files` built as a
    /// `Value` took ~70 MiB for a moment, most of the peer's peak memory.
    /// The keys come out in the order `event` gives them (alphabetical).
    pub fn event_from<T: Serialize>(&self, name: Event, data: &T) {
        #[derive(Serialize)]
        struct Line<'a, T> {
            data: &'a T,
            event: &'static str,
            r#type: &'static str,
        }
        let line = Line {
            data,
            event: name.as_str(),
            r#type: "event",
        };
        match serde_json::to_string(&line) {
            Ok(text) => {
                let _ = self.tx.send(Some(text));
            }
            Err(e) => tracing::warn!("could not encode a {} event: {e}", name.as_str()),
        }
    }

    pub fn result(&self, id: &Value, data: Value) {
        self.line(json!({ "type": "result", "id": id, "data": data }));
    }

    pub fn error(&self, id: &Value, code: ErrorCode, message: &str) {
        self.line(json!({ "type": "error", "id": id, "code": code.as_str(), "error": message }));
    }

    /// Flushes what is queued and stops the writer.
    pub fn close(&self) {
        let _ = self.tx.send(None);
    }
}
