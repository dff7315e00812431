//! Routing's state (`Assignments`): an assignment moves the lead, the team cursor and the rep's
//! open-lead count together or not at all; the counts and the SLA index follow every write of a
//! lead, redelivered ones included.

use std::collections::BTreeMap;

use chrono::TimeDelta;
use leadflow_core::FieldProblem;
use leadflow_core::model::{EnrollmentState, Lead, LeadId, SalesStatus, TeamCursor, Validity};
use leadflow_core::ports::{AssignOutcome, AssignmentWrite, LeadStore, WriteOutcome};
use leadflow_memory::fixtures::{enrollment, id, lead, owned_by, t};

use crate::support::{assert_loads, assigned, created, ok, owned_until, stored, updated};

async fn cursor<S: LeadStore>(store: &S) -> TeamCursor {
    ok(store.team_cursor("emea").await, "team cursor")
}

/// `lead` given to `rep` over `expected` version, moving team emea's cursor to `cursor` if any.
fn write(lead: Lead, rep: &str, expected: u64, cursor: Option<&TeamCursor>) -> AssignmentWrite {
    AssignmentWrite {
        lead: owned_by(lead, rep),
        expected_lead_version: expected,
        team_cursor: cursor.map(|c| ("emea".to_string(), c.clone())),
        trail: Vec::new(),
        claim: None,
    }
}

async fn assign<S: LeadStore>(store: &S, write: &AssignmentWrite) -> AssignOutcome {
    ok(store.assign(write).await, "assign")
}

pub async fn an_assignment_moves_lead_cursor_and_load_together_or_not_at_all<S: LeadStore>(store: &S) {
    created(store, &lead(1, "a@example.com")).await;
    created(store, &lead(2, "b@example.com")).await;

    let fresh_cursor = cursor(store).await;
    assert_eq!(fresh_cursor, TeamCursor::default());
    let advanced =
        TeamCursor { credit: BTreeMap::from([("rep-1".to_string(), -1), ("rep-2".to_string(), 1)]), ..fresh_cursor };
    let first = write(lead(1, "a@example.com"), "rep-1", 0, Some(&advanced));
    assert_eq!(assign(store, &first).await, AssignOutcome::Assigned);
    let stored_cursor = cursor(store).await;
    assert_eq!(stored_cursor, TeamCursor { version: 1, ..advanced.clone() });
    assert_eq!(stored(store, id(1)).await.version, 1);
    assert_loads(store, &[("rep-1", 1)], "after the first assignment").await;

    // Lead 2 routed from the cursor as it was before lead 1 took its turn: stale.
    let stale = write(lead(2, "b@example.com"), "rep-1", 0, Some(&advanced));
    assert_eq!(assign(store, &stale).await, AssignOutcome::Conflict);
    let untouched = stored(store, id(2)).await;
    assert_eq!((untouched.version, untouched.owner), (0, None), "the conflict wrote nothing");
    assert_eq!(cursor(store).await, stored_cursor);
    assert_loads(store, &[("rep-1", 1)], "after a stale cursor").await;

    // A stale lead version with a fresh cursor conflicts too, and leaves the cursor alone.
    let stale_lead = write(lead(1, "a@example.com"), "rep-2", 0, Some(&stored_cursor));
    assert_eq!(assign(store, &stale_lead).await, AssignOutcome::Conflict);
    assert_eq!(cursor(store).await, stored_cursor);
    assert_eq!(stored(store, id(1)).await.owner.map(|o| o.rep_id), Some("rep-1".into()));
    assert_loads(store, &[("rep-1", 1)], "after a stale lead").await;

    // Fresh on both counts: assigned.
    let fresh = write(lead(2, "b@example.com"), "rep-2", 0, Some(&stored_cursor));
    assert_eq!(assign(store, &fresh).await, AssignOutcome::Assigned);
    assert_eq!(cursor(store).await.version, 2);
    assert_loads(store, &[("rep-1", 1), ("rep-2", 1)], "after the second assignment").await;

    // The same assignment redelivered: a conflict, and no second count.
    assert_eq!(assign(store, &fresh).await, AssignOutcome::Conflict);
    assert_loads(store, &[("rep-1", 1), ("rep-2", 1)], "after a redelivered assignment").await;

    // An assignment without a team (a fallback owner), and one of a missing lead.
    created(store, &lead(3, "c@example.com")).await;
    let fallback = write(lead(3, "c@example.com"), "rep-3", 0, None);
    assert_eq!(assign(store, &fallback).await, AssignOutcome::Assigned);
    let missing = AssignmentWrite { lead: owned_by(lead(9, "z@example.com"), "rep-3"), ..fallback };
    assert_eq!(assign(store, &missing).await, AssignOutcome::Conflict);
    assert_eq!(store.get_lead(id(9)).await.ok(), Some(None));
    assert_loads(store, &[("rep-1", 1), ("rep-2", 1), ("rep-3", 1)], "after a fallback assignment").await;
}

async fn with_status<S: LeadStore>(store: &S, n: u64, status: SalesStatus) -> Lead {
    let mut l = stored(store, id(n)).await;
    l.status = status;
    l
}

pub async fn rep_loads_follow_assignments_status_changes_and_redeliveries<S: LeadStore>(store: &S) {
    for n in 1..=3 {
        created(store, &lead(n, &format!("p{n}@example.com"))).await;
    }
    // Born owned (an import): counted from the start. Unowned or invalid: not at all.
    created(store, &owned_by(lead(4, "p4@example.com"), "rep-2")).await;
    created(store, &lead(5, "unowned@example.com")).await;
    assert_loads(store, &[("rep-2", 1)], "after creating").await;
    for n in 1..=3 {
        assigned(store, id(n), "rep-1", t(3600)).await;
    }
    assert_loads(store, &[("rep-1", 3), ("rep-2", 1)], "after assigning").await;

    // Won: closes the lead, one count less.
    let won = with_status(store, 1, SalesStatus::Won).await;
    updated(store, &won).await;
    assert_loads(store, &[("rep-1", 2), ("rep-2", 1)], "after won").await;
    // The same update redelivered: a version conflict, no second decrement.
    assert_eq!(store.update_lead(&won, won.version, &[]).await.ok(), Some(WriteOutcome::VersionConflict));
    assert_loads(store, &[("rep-1", 2), ("rep-2", 1)], "after a redelivered won").await;
    // Updating a won lead again (a late click rescoring it) counts it no more than before.
    let mut rescored = stored(store, id(1)).await;
    rescored.submissions += 1;
    updated(store, &rescored).await;
    assert_loads(store, &[("rep-1", 2), ("rep-2", 1)], "after updating a won lead").await;

    // Contacted keeps a lead open; lost closes it.
    updated(store, &with_status(store, 2, SalesStatus::Contacted).await).await;
    updated(store, &with_status(store, 4, SalesStatus::Lost).await).await;
    assert_loads(store, &[("rep-1", 2)], "after contacted and lost").await;
    // Reopened (a won lead back to contacted): counted again.
    updated(store, &with_status(store, 1, SalesStatus::Contacted).await).await;
    assert_loads(store, &[("rep-1", 3)], "after reopening").await;

    // Re-routed after an expired SLA: the count moves from the old rep to the new one, once.
    let before = stored(store, id(3)).await;
    let reroute = write(before.clone(), "rep-2", before.version, None);
    assert_eq!(assign(store, &reroute).await, AssignOutcome::Assigned);
    assert_loads(store, &[("rep-1", 2), ("rep-2", 1)], "after re-routing").await;
    assert_eq!(assign(store, &reroute).await, AssignOutcome::Conflict, "redelivered re-route");
    assert_loads(store, &[("rep-1", 2), ("rep-2", 1)], "after a redelivered re-route").await;

    // A lost lead reassigned to another rep counts for nobody.
    let lost = stored(store, id(4)).await;
    let reassigned = write(lost.clone(), "rep-3", lost.version, None);
    assert_eq!(assign(store, &reassigned).await, AssignOutcome::Assigned);
    assert_loads(store, &[("rep-1", 2), ("rep-2", 1)], "after reassigning a lost lead").await;

    // An owner removed by an update (an admin unassigning): uncounted.
    let mut unowned = stored(store, id(2)).await;
    unowned.owner = None;
    updated(store, &unowned).await;
    assert_loads(store, &[("rep-1", 1), ("rep-2", 1)], "after unassigning").await;
}

async fn due<S: LeadStore>(store: &S, secs: i64, limit: usize) -> Vec<LeadId> {
    ok(store.due_slas(t(secs), limit).await, "due SLAs")
}

pub async fn due_slas_are_the_owned_new_valid_leads_past_due_oldest_first<S: LeadStore>(store: &S) {
    let now = 200;
    assert_eq!(due(store, now, 10).await, Vec::<LeadId>::new());

    // Born owned, or assigned after capture: in the index either way.
    created(store, &owned_until(lead(1, "p1@example.com"), "rep-1", t(100))).await;
    created(store, &lead(2, "p2@example.com")).await;
    assigned(store, id(2), "rep-1", t(50)).await;
    for (n, status) in [(3, SalesStatus::Contacted), (4, SalesStatus::Won), (5, SalesStatus::Lost)] {
        let mut l = owned_until(lead(n, &format!("p{n}@example.com")), "rep-2", t(10));
        l.status = status;
        created(store, &l).await;
    }
    created(store, &owned_until(lead(6, "p6@example.com"), "rep-2", t(500))).await; // not due yet
    let just_after = t(now) + TimeDelta::milliseconds(1);
    created(store, &owned_until(lead(6_000, "p6000@example.com"), "rep-2", just_after)).await; // nor this
    created(store, &lead(7, "p7@example.com")).await; // unowned
    let mut invalid = owned_until(lead(8, "p8@example.com"), "rep-2", t(10));
    invalid.validity = Validity::Invalid { reasons: vec![FieldProblem::new("consent", "required", "Required.")] };
    created(store, &invalid).await;
    created(store, &owned_until(lead(9, "p9@example.com"), "rep-1", t(now))).await; // due exactly now
    // A due enrollment is no due SLA, and a due SLA no due enrollment.
    assert_eq!(store.enroll(&enrollment(7, "c", Some(t(10)), EnrollmentState::Active), &[]).await.ok(), Some(true));

    assert_eq!(due(store, now, 10).await, [id(2), id(1), id(9)]);
    assert_eq!(due(store, now, 2).await, [id(2), id(1)]);
    assert_eq!(due(store, now, 0).await, Vec::<LeadId>::new());
    assert_eq!(due(store, 99, 10).await, [id(2)]);
    assert_eq!(due(store, 49, 10).await, Vec::<LeadId>::new());
    assert_eq!(due(store, 1000, 10).await, [id(2), id(1), id(9), id(6_000), id(6)]);
    let due_enrollments = ok(store.due_enrollments(t(1000), 10).await, "due enrollments");
    assert_eq!(due_enrollments.iter().map(|e| e.lead_id).collect::<Vec<_>>(), [id(7)]);

    // The index follows every write of a lead. Contacted: the SLA is met, out.
    updated(store, &with_status(store, 2, SalesStatus::Contacted).await).await;
    // A later SLA moves the lead back in the order.
    let mut one = stored(store, id(1)).await;
    one = Lead { owner: owned_until(one.clone(), "rep-1", t(150)).owner, ..one };
    updated(store, &one).await;
    // Contacted back to new (sales undid it): in again.
    updated(store, &with_status(store, 3, SalesStatus::New).await).await;
    // Assigned: the unowned lead gets an owner whose SLA has passed.
    assigned(store, id(7), "rep-3", t(20)).await;
    assert_eq!(due(store, now, 10).await, [id(3), id(7), id(1), id(9)]);
    // A merge (an update that keeps owner and status) keeps the SLA running.
    let mut merged = stored(store, id(9)).await;
    merged.submissions += 1;
    updated(store, &merged).await;
    // A conflicting write changes nothing in the index.
    let stale = with_status(store, 9, SalesStatus::Won).await;
    assert_eq!(store.update_lead(&stale, stale.version + 5, &[]).await.ok(), Some(WriteOutcome::VersionConflict));
    assert_eq!(due(store, now, 10).await, [id(3), id(7), id(1), id(9)]);

    // Re-routed after the breach: another rep, a new SLA.
    assigned(store, id(3), "rep-2", t(5000)).await;
    assert_eq!(due(store, now, 10).await, [id(7), id(1), id(9)]);
    assert_eq!(due(store, 6000, 10).await, [id(7), id(1), id(9), id(6_000), id(6), id(3)]);
}
