//! The outbox as data: a message claimed for delivery, how its delivery ended, and a partner's
//! progress through its migration wave. The store keeps them; `notify` composes and delivers.

use super::status::OutboxKind;

/// A claimed message, ready to compose and deliver.
#[derive(Debug, Clone)]
pub struct ClaimedMessage {
    pub id: i64,
    pub kind: OutboxKind,
    pub partner_id: String,
    pub scope: String,
    pub recipient: String,
    pub recipient_name: String,
    pub message_id: String,
    pub context: serde_json::Value,
    pub attempts: i64,
}

/// How one delivery attempt ended, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Sent,
    /// Temporary failure: try again at `next_attempt_at_ms`.
    Retry {
        next_attempt_at_ms: i64,
        error: String,
    },
    /// The server stalled before this message was offered (no greeting, no reply to EHLO,
    /// STARTTLS or AUTH in time): try again at `next_attempt_at_ms`, no attempt counted, so a
    /// stuck relay never fails a message for good.
    Deferred {
        next_attempt_at_ms: i64,
        error: String,
    },
    /// Permanent failure, with the server's reply or the reason.
    Failed(String),
    /// Not attempted (server unreachable): back to the queue, no attempt counted.
    Release,
}

/// A legacy-portal partner's progress through its migration wave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WaveProgress {
    pub wave: String,
    pub reminders: i64,
    pub last_notified_on: Option<String>,
    pub completed_on: Option<String>,
}
