//! The DynamoDB store: the [`Assignments`] role.

use leadflow_core::ports::Assignments;

use super::*;

impl Assignments for DynamoStore {
    async fn team_cursor(&self, team_id: &str) -> Result<TeamCursor, StoreError> {
        let Some(item) = self.get_item("team cursor", format!("TEAM#{team_id}"), CURSOR).await? else {
            return Ok(TeamCursor::default());
        };
        let what = format!("team cursor {team_id}");
        let mut cursor: TeamCursor = decode(&item, &what)?;
        cursor.version = num_u64(&item, VERSION, &what)?;
        Ok(cursor)
    }

    async fn rep_loads(&self) -> Result<BTreeMap<RepId, u32>, StoreError> {
        let mut loads = BTreeMap::new();
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
                let Some(rep) = str_attr(&item, SK) else { continue };
                let open = num_i64(&item, OPEN, "rep load")?;
                // Reps whose leads all closed keep a zero counter; the SQLite adapter does not
                // list them, nor do we.
                if open > 0 {
                    loads.insert(rep.to_string(), u32::try_from(open).unwrap_or(u32::MAX));
                }
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(loads),
            }
        }
    }

    async fn assign(&self, write: &AssignmentWrite) -> Result<AssignOutcome, StoreError> {
        const OP: &str = "assign";
        let cursor = match &write.team_cursor {
            Some((team_id, cursor)) => {
                let next = TeamCursor { credit: cursor.credit.clone(), version: cursor.version.saturating_add(1) };
                let item = Item::from([
                    (PK.into(), s(format!("TEAM#{team_id}"))),
                    (SK.into(), s(CURSOR)),
                    (DOC.into(), s(encode(&next, "team cursor")?)),
                    (VERSION.into(), n(next.version)),
                ]);
                // An absent cursor is the default one, version 0.
                let cond = if cursor.version == 0 {
                    Cond::new("attribute_not_exists(#pk)").name("#pk", PK)
                } else {
                    Cond::new("#v = :cursor_version").name("#v", VERSION).value(":cursor_version", n(cursor.version))
                };
                Some(cond.put(&self.table, item, false)?)
            }
            None => None,
        };
        let mut also: Vec<TransactWriteItem> = cursor.into_iter().collect();
        also.extend(trail_puts(&self.table, &write.trail)?);
        if let Some(claim) = &write.claim {
            let unheld = Cond::new("attribute_not_exists(#pk)").name("#pk", PK);
            also.push(unheld.put(&self.table, super::effects::claim_item(&claim.key, claim.lease_until), false)?);
        }
        // Route assigns leads that have no owner yet; a re-route after an expired SLA costs a
        // second attempt that moves the count from the old rep to the new one. The counters
        // follow the lead's owner (`write.lead`).
        let assigned = self.write_lead(OP, &write.lead, write.expected_lead_version, None, also).await?;
        Ok(if assigned { AssignOutcome::Assigned } else { AssignOutcome::Conflict })
    }

    async fn due_slas(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<LeadId>, StoreError> {
        let merged = self.query_due_index(SLA_PARTITION, "due SLAs", now, limit, true).await?;
        merged.items.iter().map(|(sort, _)| sla_lead(sort)).collect()
    }
}
