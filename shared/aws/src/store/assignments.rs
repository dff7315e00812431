//! The DynamoDB store: the [`Assignments`] role.

use leadflow_core::ports::Assignments;

use super::*;

impl Assignments for DynamoStore {
    async fn team_cursor(&self, team_id: &str) -> Result<TeamCursor, StoreError> {
        match self.get_item("team cursor", REPLOAD.into(), &cursor_sort_key(team_id)).await? {
            Some(item) => cursor_of(&item, team_id),
            None => self.legacy_cursor(team_id).await,
        }
    }

    async fn rep_loads(&self) -> Result<BTreeMap<RepId, u32>, StoreError> {
        Ok(self.routing_partition().await?.loads)
    }

    async fn routing_state(&self, team_id: Option<&str>) -> Result<(TeamCursor, BTreeMap<RepId, u32>), StoreError> {
        let partition = self.routing_partition().await?;
        let cursor = match team_id {
            None => TeamCursor::default(),
            Some(team) => match partition.cursors.get(team) {
                Some(item) => cursor_of(item, team)?,
                None => self.legacy_cursor(team).await?,
            },
        };
        Ok((cursor, partition.loads))
    }

    async fn assign(&self, write: &AssignmentWrite) -> Result<AssignOutcome, StoreError> {
        const OP: &str = "assign";
        let cursor = match &write.team_cursor {
            Some((team_id, cursor)) => {
                let next = TeamCursor { credit: cursor.credit.clone(), version: cursor.version.saturating_add(1) };
                let item = Item::from([
                    (PK.into(), s(REPLOAD)),
                    (SK.into(), s(cursor_sort_key(team_id))),
                    (DOC.into(), s(encode(&next, "team cursor")?)),
                    (VERSION.into(), n(next.version)),
                ]);
                // An absent cursor is the default one, version 0. A cursor read from where
                // versions before 12-03 kept it (`legacy_cursor`) has no item here yet: the first
                // write creates it, and any later one finds it at a newer version.
                let cond = if cursor.version == 0 {
                    Cond::new("attribute_not_exists(#pk)").name("#pk", PK)
                } else {
                    Cond::new("attribute_not_exists(#pk) OR #v = :cursor_version")
                        .name("#pk", PK)
                        .name("#v", VERSION)
                        .value(":cursor_version", n(cursor.version))
                };
                Some(cond.put(&self.table, item, false)?)
            }
            None => None,
        };
        let mut also: Vec<TransactWriteItem> = cursor.into_iter().collect();
        if let Some(claim) = &write.claim {
            let unheld = Cond::new("attribute_not_exists(#pk)").name("#pk", PK);
            also.push(unheld.put(&self.table, super::effects::claim_item(&claim.key, claim.lease_until), false)?);
        }
        // Route assigns leads that have no owner yet; a re-route after an expired SLA costs a
        // second attempt that moves the count from the old rep to the new one. The counters
        // follow the lead's owner (`write.lead`).
        let assigned = self.write_lead(OP, &write.lead, write.expected_lead_version, None, &write.trail, also).await?;
        Ok(if assigned { AssignOutcome::Assigned } else { AssignOutcome::Conflict })
    }

    async fn due_slas(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<LeadId>, StoreError> {
        let merged = self.query_due_index(SLA_PARTITION, "due SLAs", now, limit, true).await?;
        merged.items.iter().map(|(sort, _)| sla_lead(sort)).collect()
    }
}

/// A team's cursor lives in the rep loads' partition, so routing reads both with one Query.
/// Rep ids are the other sort keys there; none starts with `#`.
const CURSOR_PREFIX: &str = "#CURSOR#";

fn cursor_sort_key(team_id: &str) -> String {
    format!("{CURSOR_PREFIX}{team_id}")
}

fn cursor_of(item: &Item, team_id: &str) -> Result<TeamCursor, StoreError> {
    let what = format!("team cursor {team_id}");
    let mut cursor: TeamCursor = decode(item, &what)?;
    cursor.version = num_u64(item, VERSION, &what)?;
    Ok(cursor)
}

/// The `REPLOAD` partition: the team cursors' items by team, and the open-lead counts.
struct RoutingPartition {
    cursors: BTreeMap<String, Item>,
    loads: BTreeMap<RepId, u32>,
}

impl DynamoStore {
    async fn routing_partition(&self) -> Result<RoutingPartition, StoreError> {
        let mut partition = RoutingPartition { cursors: BTreeMap::new(), loads: BTreeMap::new() };
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(REPLOAD))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable("rep loads", &e))?;
            for item in out.items.unwrap_or_default() {
                let Some(sort) = str_attr(&item, SK) else { continue };
                if let Some(team) = sort.strip_prefix(CURSOR_PREFIX).map(str::to_string) {
                    partition.cursors.insert(team, item);
                    continue;
                }
                let open = num_i64(&item, OPEN, "rep load")?;
                // Reps whose leads all closed keep a zero counter; the SQLite adapter does not
                // list them, nor do we.
                if open > 0 {
                    partition.loads.insert(sort.to_string(), u32::try_from(open).unwrap_or(u32::MAX));
                }
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(partition),
            }
        }
    }

    /// Where versions before 12-03 kept a team's cursor (`TEAM#<id>`, `CURSOR`): read only when
    /// the rep loads' partition has none for the team, so a deployment that upgrades keeps its
    /// round-robin's place. The next assignment writes the cursor to its new place.
    async fn legacy_cursor(&self, team_id: &str) -> Result<TeamCursor, StoreError> {
        match self.get_item("team cursor", format!("TEAM#{team_id}"), CURSOR).await? {
            Some(item) => cursor_of(&item, team_id),
            None => Ok(TeamCursor::default()),
        }
    }
}
