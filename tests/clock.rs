//! The store reads time only from its injected `Clock`, so lease expiry, claim expiry and
//! retry backoff are tested by moving a `ManualClock`, never by sleeping, on both backends.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::{Env, backends};
use payout::domain::clock::ManualClock;
use payout::domain::status::{OutboxKind, OutboxStatus};
use payout::store::{DeliveryOutcome, OutboxMessage, Store, StoreError};

async fn store_at(env: &Env, clock: &Arc<ManualClock>) -> Store {
    Store::connect(&env.database_url)
        .await
        .expect("the test store")
        .with_clock(clock.clone())
}

fn clock() -> Arc<ManualClock> {
    // Not on a whole second, as real clocks are not.
    let start =
        Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap() + chrono::Duration::milliseconds(417);
    Arc::new(ManualClock::new(start))
}

fn message(partner_id: &str) -> OutboxMessage {
    OutboxMessage {
        kind: OutboxKind::Invitation,
        partner_id: partner_id.to_owned(),
        scope: "csp-direct".to_owned(),
        recipient: format!("{partner_id}@example.com"),
        recipient_name: "Pat".to_owned(),
        context: serde_json::json!({}),
    }
}

#[tokio::test]
async fn a_claim_expires_only_when_the_clock_passes_its_expiry() {
    for backend in backends() {
        let env = Env::new(backend).await;
        let clock = clock();
        let store = store_at(&env, &clock).await;
        assert_eq!(
            store.queue_messages(&[message("1000001")]).await.unwrap(),
            1
        );
        let first = store.claim_messages("sender-a", 10, 60_000).await.unwrap();
        assert_eq!(first.len(), 1, "{backend:?}");
        assert_eq!(first[0].kind, OutboxKind::Invitation);

        clock.advance(chrono::Duration::milliseconds(59_999));
        let early = store.claim_messages("sender-b", 10, 60_000).await.unwrap();
        assert!(early.is_empty(), "{backend:?}: a live claim was taken over");

        clock.advance(chrono::Duration::milliseconds(2));
        let late = store.claim_messages("sender-b", 10, 60_000).await.unwrap();
        assert_eq!(
            late.len(),
            1,
            "{backend:?}: an expired claim was not released"
        );
        assert_eq!(late[0].id, first[0].id);

        // The first sender's outcome no longer counts: only the holder of the claim records.
        store
            .record_deliveries("sender-a", &[(first[0].id, DeliveryOutcome::Sent)])
            .await
            .unwrap();
        assert_eq!(store.count_outbox(OutboxStatus::Sent).await.unwrap(), 0);
        store
            .record_deliveries("sender-b", &[(late[0].id, DeliveryOutcome::Sent)])
            .await
            .unwrap();
        assert_eq!(store.count_outbox(OutboxStatus::Sent).await.unwrap(), 1);
    }
}

#[tokio::test]
async fn a_retried_message_waits_for_its_backoff_by_the_clock() {
    for backend in backends() {
        let env = Env::new(backend).await;
        let clock = clock();
        let store = store_at(&env, &clock).await;
        store.queue_messages(&[message("1000002")]).await.unwrap();
        let claimed = store.claim_messages("sender", 10, 60_000).await.unwrap();
        let retry_at = store.now_ms() + 30_000;
        store
            .record_deliveries(
                "sender",
                &[(
                    claimed[0].id,
                    DeliveryOutcome::Retry {
                        next_attempt_at_ms: retry_at,
                        error: "421 try later".to_owned(),
                    },
                )],
            )
            .await
            .unwrap();
        assert_eq!(store.next_retry_at().await.unwrap(), Some(retry_at));

        clock.advance(chrono::Duration::milliseconds(29_999));
        assert!(
            store
                .claim_messages("sender", 10, 60_000)
                .await
                .unwrap()
                .is_empty(),
            "{backend:?}"
        );
        clock.advance(chrono::Duration::milliseconds(1));
        let again = store.claim_messages("sender", 10, 60_000).await.unwrap();
        assert_eq!(again.len(), 1, "{backend:?}");
        assert_eq!(again[0].attempts, 1);
    }
}

#[tokio::test]
async fn a_lease_of_a_live_holder_is_taken_only_after_it_expires_by_the_clock() {
    for backend in backends() {
        let env = Env::new(backend).await;
        let clock = clock();
        let store = store_at(&env, &clock).await;
        let held = store
            .acquire_lease("close:2026-10", Duration::ZERO)
            .await
            .unwrap();
        // The holder is this live process, so only expiry can free the lease.
        clock.advance(chrono::Duration::seconds(59));
        match store.acquire_lease("close:2026-10", Duration::ZERO).await {
            Err(StoreError::Busy(message)) => {
                assert!(message.contains("close:2026-10"), "{message}")
            }
            Err(other) => panic!("{backend:?}: {other}"),
            Ok(_) => panic!("{backend:?}: a live lease was taken over"),
        }
        clock.advance(chrono::Duration::seconds(2));
        let taken = store.acquire_lease("close:2026-10", Duration::ZERO).await;
        assert!(taken.is_ok(), "{backend:?}: an expired lease was not taken");
        drop(held);
    }
}
