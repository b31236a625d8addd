//! Keeping the audit trail within its retention: old events are deleted, and the client
//! details of less old ones forgotten. (Reading the trail back is the real repositories'
//! alone, tested over HTTP in `audit.rs`.)

use authgraph::domain::{AuditEvent, AuditKind, UserId};

use super::{Stores, at};

fn event(seconds: i64, ip: Option<&str>, user_agent: Option<&str>) -> AuditEvent {
    AuditEvent {
        id: uuid::Uuid::now_v7(),
        kind: AuditKind::LoginSucceeded,
        occurred_at: at(seconds),
        actor: Some(UserId::generate()),
        subject: None,
        ip: ip.map(str::to_owned),
        user_agent: user_agent.map(str::to_owned),
        detail: None,
    }
}

#[tokio::test]
async fn old_events_are_deleted_and_older_client_details_forgotten() {
    let stores = Stores::new().await;
    stores
        .audit
        .insert(&[
            event(0, Some("192.0.2.1"), None),
            event(100, Some("192.0.2.2"), Some("Firefox")),
            event(100, None, None),
            event(200, Some("192.0.2.3"), None),
            event(300, None, Some("Safari")),
        ])
        .await
        .unwrap();

    let (deleted, forgotten) = stores
        .audit
        .apply_retention(at(100), at(250))
        .await
        .unwrap();

    assert_eq!(deleted, 1, "only the event before the cut-off");
    assert_eq!(
        forgotten, 2,
        "events before the second cut-off that had client details"
    );
    assert_eq!(
        stores
            .audit
            .apply_retention(at(100), at(250))
            .await
            .unwrap(),
        (0, 0),
        "nothing left to do"
    );
}

#[tokio::test]
async fn an_empty_batch_is_no_error() {
    let stores = Stores::new().await;
    stores.audit.insert(&[]).await.unwrap();
    assert_eq!(
        stores.audit.apply_retention(at(0), at(0)).await.unwrap(),
        (0, 0)
    );
}
