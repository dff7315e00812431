//! The leads themselves (`Leads`): one lead per id and per valid address, updates conditional on
//! the version read, idempotency keys and aliases for redelivered captures, and erasure.

use leadflow_core::FieldProblem;
use leadflow_core::erasure::tombstone;
use leadflow_core::model::{Activity, ActivityKind, EnrollmentState, Lead, LeadId, SalesStatus, Validity};
use leadflow_core::normalize::email_key;
use leadflow_core::ports::{CreateOutcome, EffectClaim, IdempotencyClaim, LeadStore, WriteOutcome};
use leadflow_memory::fixtures::{enrollment, id, lead, owned_by, t};

use crate::support::{assert_loads, created, ok, owned_until, stored, updated};

fn invalid(mut l: Lead) -> Lead {
    l.validity = Validity::Invalid { reasons: vec![FieldProblem::new("consent", "required", "Consent is required.")] };
    l
}

async fn found<S: LeadStore>(store: &S, address: &str) -> Option<LeadId> {
    ok(store.find_by_email_key(&email_key(address)).await, "find by email key")
}

pub async fn a_redelivered_create_is_already_exists_and_a_second_lead_with_the_email_is_email_taken<S: LeadStore>(
    store: &S,
) {
    let first = lead(1, "ada@example.com");
    assert_eq!(ok(store.create_lead(&first, &[]).await, "create"), CreateOutcome::Created);
    assert_eq!(ok(store.create_lead(&first, &[]).await, "create again"), CreateOutcome::AlreadyExists);

    let same_person = lead(2, "ada@example.com");
    assert_eq!(ok(store.create_lead(&same_person, &[]).await, "create"), CreateOutcome::EmailTaken(id(1)));
    assert_eq!(store.get_lead(id(2)).await.ok(), Some(None), "a lead whose email is taken is not stored");
    assert_eq!(found(store, "ada@example.com").await, Some(id(1)));
    assert_eq!(found(store, "nobody@example.com").await, None);
    assert_eq!(stored(store, id(1)).await, first);
}

pub async fn invalid_leads_are_kept_without_claiming_their_email<S: LeadStore>(store: &S) {
    let kept = invalid(lead(1, "ada@example.com"));
    assert_eq!(ok(store.create_lead(&kept, &[]).await, "create"), CreateOutcome::Created);
    assert_eq!(ok(store.create_lead(&kept, &[]).await, "create again"), CreateOutcome::AlreadyExists);
    assert_eq!(found(store, "ada@example.com").await, None);
    // The valid resubmission gets the email.
    assert_eq!(ok(store.create_lead(&lead(2, "ada@example.com"), &[]).await, "create"), CreateOutcome::Created);
    assert_eq!(found(store, "ada@example.com").await, Some(id(2)));
    assert_eq!(stored(store, id(1)).await, kept);
}

pub async fn updates_are_conditional_on_the_version_read<S: LeadStore>(store: &S) {
    let mut l = lead(1, "ada@example.com");
    created(store, &l).await;

    l.submissions = 2;
    assert_eq!(ok(store.update_lead(&l, 0, &[]).await, "update"), WriteOutcome::Written);
    let read = stored(store, id(1)).await;
    assert_eq!((read.version, read.submissions), (1, 2));

    // A writer that read version 0 too has lost the race.
    l.submissions = 99;
    assert_eq!(ok(store.update_lead(&l, 0, &[]).await, "update"), WriteOutcome::VersionConflict);
    assert_eq!(stored(store, id(1)).await.submissions, 2);

    let missing = lead(7, "x@example.com");
    assert_eq!(ok(store.update_lead(&missing, 0, &[]).await, "update"), WriteOutcome::VersionConflict, "missing lead");
    assert_eq!(store.get_lead(id(7)).await.ok(), Some(None), "a conflicting update creates nothing");
}

pub async fn idempotency_keys_bind_until_they_expire<S: LeadStore>(store: &S) {
    let claim = async |key: &str, n: u64, now: i64, expires: i64| {
        ok(store.claim_idempotency_key(key, id(n), t(now), t(expires)).await, "claim idempotency key")
    };
    assert_eq!(claim("k", 1, 0, 100).await, IdempotencyClaim::Claimed);
    assert_eq!(claim("k", 2, 50, 150).await, IdempotencyClaim::Seen(id(1)));
    // Expiring at 100 means still bound at 100…
    assert_eq!(claim("k", 2, 100, 150).await, IdempotencyClaim::Seen(id(1)));
    // …and free after, whether or not the store has deleted the binding yet.
    assert_eq!(claim("k", 3, 101, 200).await, IdempotencyClaim::Claimed);
    assert_eq!(claim("k", 4, 102, 300).await, IdempotencyClaim::Seen(id(3)));
    assert_eq!(claim("other", 5, 102, 300).await, IdempotencyClaim::Claimed);
}

pub async fn aliases_resolve_to_the_lead_merged_into<S: LeadStore>(store: &S) {
    created(store, &lead(1, "ada@example.com")).await;
    assert!(ok(store.record_alias(id(2), id(1)).await, "record alias"));
    assert!(!ok(store.record_alias(id(2), id(1)).await, "record alias again"), "recorded already");
    assert_eq!(store.resolve_lead(id(1)).await.ok(), Some(Some(id(1))));
    assert_eq!(store.resolve_lead(id(2)).await.ok(), Some(Some(id(1))));
    assert_eq!(store.resolve_lead(id(3)).await.ok(), Some(None));
    assert_eq!(store.get_lead(id(2)).await.ok(), Some(None), "an alias is not a lead");

    // The merged submission redelivered after the lead it merged into took another address:
    // its id is taken, so it does not come back as a second lead with the old address.
    let redelivered = lead(2, "ada.old@example.com");
    let entry = opened(id(2), "submission-2", 5);
    assert_eq!(ok(store.create_lead(&redelivered, &[entry]).await, "create"), CreateOutcome::AlreadyExists);
    assert_eq!(store.get_lead(id(2)).await.ok(), Some(None), "nothing is created under an alias");
    assert_eq!(found(store, "ada.old@example.com").await, None, "nor an email key");
    assert_eq!(ok(store.activities(id(2)).await, "activities"), [], "nor a trail");
}

fn opened(lead: LeadId, activity: &str, secs: i64) -> Activity {
    Activity {
        id: activity.to_string(),
        lead_id: lead,
        at: t(secs),
        kind: ActivityKind::EmailOpened { message_id: "m".into(), email: None },
    }
}

/// Erases the stored lead as the admin API does: its tombstone, one version on.
async fn erased<S: LeadStore>(store: &S, lead: LeadId, key: Option<&str>) -> Lead {
    let gone = tombstone(&stored(store, lead).await, t(500));
    ok(store.erase_lead(&gone, key).await, "erase lead");
    gone
}

pub async fn erasure_replaces_the_lead_and_deletes_its_key_and_activities<S: LeadStore>(store: &S) {
    let ada = email_key("ada@example.com");
    created(store, &owned_until(lead(1, "ada@example.com"), "rep-1", t(100))).await;
    created(store, &owned_by(lead(2, "bob@example.com"), "rep-1")).await;
    created(store, &invalid(lead(3, "bob@example.com"))).await;
    // More activities than one batch of a store's deletes.
    for n in 0..30 {
        ok(store.record_activity(&opened(id(1), &format!("a{n:02}"), n)).await, "record activity");
    }
    ok(store.record_activity(&opened(id(2), "kept", 1)).await, "record activity");
    // An email sent to the lead: its entry goes with the erasure, the memory of the send stays.
    let sent = "email:welcome-1";
    assert_eq!(store.claim_effect(id(1), sent, t(40), t(160)).await.ok(), Some(EffectClaim::Claimed));
    ok(store.finish_effect(id(1), sent, "m-1", &[opened(id(1), "sent-welcome-1", 41)]).await, "finish effect");
    let stopped = enrollment(1, "c", None, EnrollmentState::Stopped { reason: "erased".into() });
    assert_eq!(store.enroll(&stopped, &[]).await.ok(), Some(true));
    let mut merged = stored(store, id(1)).await;
    merged.submissions = 2;
    updated(store, &merged).await;
    let before = stored(store, id(1)).await;
    assert_loads(store, &[("rep-1", 2)], "before").await;
    assert_eq!(store.due_slas(t(200), 10).await.ok(), Some(vec![id(1)]));

    let gone = erased(store, id(1), Some(&ada)).await;
    assert_eq!(stored(store, id(1)).await, gone);
    assert_eq!(gone.version, 2);
    assert_eq!(found(store, "ada@example.com").await, None);
    assert_eq!(store.activities(id(1)).await.ok(), Some(Vec::new()));
    let again = store.claim_effect(id(1), sent, t(501), t(621)).await.ok();
    assert_eq!(again, Some(EffectClaim::Done("m-1".into())), "a redelivery sends nothing again");
    assert_eq!(store.activities(id(2)).await.ok().map(|a| a.len()), Some(1), "other leads keep theirs");
    assert_eq!(store.enrollments(id(1)).await.ok(), Some(vec![stopped]), "enrollments are kept");
    // An erased lead is closed whatever its tombstone keeps of the owner.
    assert_loads(store, &[("rep-1", 1)], "after erasing an owned open lead").await;
    assert_eq!(store.due_slas(t(200), 10).await.ok(), Some(Vec::new()));
    let listed = ok(store.list_leads(None, 100).await, "list leads").leads;
    assert!(listed.contains(&gone) && listed.iter().all(|l| l.contact.email != "ada@example.com"));
    // A writer that read the lead before the erasure cannot bring the data back.
    assert_eq!(store.update_lead(&before, before.version, &[]).await.ok(), Some(WriteOutcome::VersionConflict));
    // The address is free: the person may sign up again as a new lead.
    created(store, &lead(4, "ada@example.com")).await;

    // The key given belongs to another lead (the address was merged away): it stays.
    erased(store, id(3), Some(&email_key("bob@example.com"))).await;
    assert_eq!(found(store, "bob@example.com").await, Some(id(2)));
    assert_eq!(stored(store, id(3)).await.version, 1);

    // Erased again with a tombstone of the tombstone (a retried request read it): the tombstone
    // stays as it is, and the new lead's key is not this lead's.
    let first_tombstone = stored(store, id(1)).await;
    erased(store, id(1), Some(&ada)).await;
    assert_eq!(stored(store, id(1)).await, first_tombstone);
    assert_eq!(found(store, "ada@example.com").await, Some(id(4)));
    assert_loads(store, &[("rep-1", 1)], "after erasing again").await;

    // A won lead's erasure counts nothing.
    let mut won = stored(store, id(2)).await;
    won.status = SalesStatus::Won;
    updated(store, &won).await;
    assert_loads(store, &[], "after the deal was won").await;
    erased(store, id(2), Some(&email_key("bob@example.com"))).await;
    assert_eq!(found(store, "bob@example.com").await, None);
    assert_eq!(store.activities(id(2)).await.ok(), Some(Vec::new()));
    assert_loads(store, &[], "after erasing a won lead").await;

    // A lead that is not there is not created by erasing it.
    let nobody = email_key("nobody@example.com");
    ok(store.erase_lead(&tombstone(&lead(9, "nobody@example.com"), t(500)), Some(&nobody)).await, "erase");
    assert_eq!(store.get_lead(id(9)).await.ok(), Some(None));
}

/// A tombstone made before a write came in still wins, one version further on: an erasure is
/// never undone by a writer that read the lead before it.
pub async fn erasure_wins_over_a_write_that_came_in_since_the_tombstone_was_made<S: LeadStore>(store: &S) {
    created(store, &owned_by(lead(1, "ada@example.com"), "rep-1")).await;
    let read = stored(store, id(1)).await;
    let gone = tombstone(&read, t(500)); // version 1
    // A merge writes version 1 between the admin's read and the erasure.
    let mut merged = read.clone();
    merged.submissions = 2;
    updated(store, &merged).await;

    ok(store.erase_lead(&gone, Some(&email_key("ada@example.com"))).await, "erase lead");
    assert_eq!(stored(store, id(1)).await, Lead { version: 2, ..gone });
    // The merge's next write, based on version 1, fails rather than restoring the data.
    assert_eq!(store.update_lead(&merged, 1, &[]).await.ok(), Some(WriteOutcome::VersionConflict));
    assert_loads(store, &[], "the erased lead counts for nobody").await;
}

/// A redelivered erasure finds the tombstone and leaves it as it is.
pub async fn an_erased_lead_is_not_erased_again<S: LeadStore>(store: &S) {
    created(store, &owned_by(lead(1, "ada@example.com"), "rep-1")).await;
    let gone = tombstone(&stored(store, id(1)).await, t(500));
    let key = email_key("ada@example.com");
    ok(store.erase_lead(&gone, Some(&key)).await, "erase lead");
    ok(store.erase_lead(&gone, Some(&key)).await, "erase lead again");
    assert_eq!(stored(store, id(1)).await, gone);
    assert_loads(store, &[], "the erased lead counts for nobody, once").await;
}
