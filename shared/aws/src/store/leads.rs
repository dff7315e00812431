//! The DynamoDB store: the [`Leads`] role.

use leadflow_core::ports::Leads;

use super::*;

impl Leads for DynamoStore {
    async fn claim_idempotency_key(
        &self,
        key: &str,
        lead_id: LeadId,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<IdempotencyClaim, StoreError> {
        const OP: &str = "claim idempotency key";
        let pk = format!("IDEM#{key}");
        // A second round only when the binding vanished (TTL) between the failed put and the
        // read: the key is free then.
        for _ in 0..2 {
            let item = Item::from([
                (PK.into(), s(&pk)),
                (SK.into(), s(NO_SORT)),
                (LEAD_ID.into(), s(lead_id.to_string())),
                (UNTIL.into(), n(expires_at.timestamp_millis())),
                (EXPIRES_AT.into(), n(ttl_seconds(expires_at))),
            ]);
            // TTL deletes lazily, up to days late: an expired binding is free whether or not it
            // is still there.
            let cond = Cond::new("attribute_not_exists(#pk) OR #until < :now")
                .name("#pk", PK)
                .name("#until", UNTIL)
                .value(":now", n(now.timestamp_millis()));
            let stored = match self.put_if(OP, item, cond).await? {
                Ok(()) => return Ok(IdempotencyClaim::Claimed),
                Err(Some(stored)) => Some(stored),
                Err(None) => self.get_item(OP, pk.clone(), NO_SORT).await?,
            };
            if let Some(stored) = stored {
                let until = num_i64(&stored, UNTIL, "idempotency key")?;
                if until >= now.timestamp_millis() {
                    return Ok(IdempotencyClaim::Seen(lead_id_attr(&stored, LEAD_ID, "idempotency key")?));
                }
            }
        }
        Err(StoreError::Unavailable(format!("{OP}: the key kept changing while it was claimed")))
    }

    async fn create_lead(&self, lead: &Lead, trail: &[Activity]) -> Result<CreateOutcome, StoreError> {
        const OP: &str = "create lead";
        let mut item = lead_item(lead, lead.version)?;
        let inline = inline_entries(lead.version, trail)?;
        let separate = if inline.is_empty() { trail } else { &[] };
        item.extend(inline);
        let absent = || Cond::new("attribute_not_exists(#pk)").name("#pk", PK);
        let email = lead.is_valid().then(|| email_key(&lead.contact.email));
        // Where each item sits in the transaction, for reading its cancellation reason.
        const LEAD_AT: usize = 0;
        const ALIAS_AT: usize = 1;
        const EMAIL_AT: usize = 2;
        // The alias a merge of this submission left is checked in the same transaction, so a
        // fresh submission costs no read before its write.
        let alias_key = Item::from([(PK.into(), s(lead_pk(lead.id))), (SK.into(), s(ALIAS))]);
        let mut items = vec![absent().put(&self.table, item, false)?, absent().check(&self.table, alias_key)?];
        if let Some(key) = &email {
            let email_item = Item::from([
                (PK.into(), s(email_pk(key))),
                (SK.into(), s(EMAIL_SK)),
                (LEAD_ID.into(), s(lead.id.to_string())),
            ]);
            items.push(absent().put(&self.table, email_item, true)?);
        }
        // A lead can be born owned (imports, tests); its rep's count must include it.
        if let Some(rep) = open_owner(lead) {
            items.push(load_update(&self.table, rep, 1)?);
        }
        items.extend(trail_puts(&self.table, separate)?);
        let Some(reasons) = self.transact(OP, items).await? else {
            return Ok(CreateOutcome::Created);
        };
        let failed = |i: usize| reasons.get(i).and_then(CancellationReason::code) == Some(CONDITIONAL_CHECK_FAILED);
        if failed(LEAD_AT) || failed(ALIAS_AT) {
            return Ok(CreateOutcome::AlreadyExists);
        }
        if let Some(key) = email.as_ref().filter(|_| failed(EMAIL_AT)) {
            let stored = match reasons.get(EMAIL_AT).and_then(|r| r.item.clone()) {
                Some(item) => Some(item),
                None => self.get_item(OP, email_pk(key), EMAIL_SK).await?,
            };
            if let Some(stored) = stored {
                return Ok(CreateOutcome::EmailTaken(lead_id_attr(&stored, LEAD_ID, "email key")?));
            }
        }
        // A collision with a concurrent transaction, or an email key erased in between.
        Err(StoreError::Unavailable(format!("{OP}: a concurrent write touched the same items; retry")))
    }

    async fn update_lead(
        &self,
        lead: &Lead,
        expected_version: u64,
        trail: &[Activity],
    ) -> Result<WriteOutcome, StoreError> {
        // Most updates (scores, merges) leave the owner as it was: guessing so makes them one
        // plain conditional update (a young lead's entries inside it), or one transaction with
        // their trail.
        let guess = open_owner(lead).map(str::to_string);
        Ok(match self.write_lead("update lead", lead, expected_version, guess, trail, Vec::new()).await? {
            true => WriteOutcome::Written,
            false => WriteOutcome::VersionConflict,
        })
    }

    async fn record_alias(&self, alias: LeadId, into: LeadId) -> Result<bool, StoreError> {
        let item =
            Item::from([(PK.into(), s(lead_pk(alias))), (SK.into(), s(ALIAS)), (INTO.into(), s(into.to_string()))]);
        let cond = Cond::new("attribute_not_exists(#pk)").name("#pk", PK);
        Ok(self.put_if("record alias", item, cond).await?.is_ok())
    }

    async fn resolve_lead(&self, id: LeadId) -> Result<Option<LeadId>, StoreError> {
        const OP: &str = "resolve lead";
        let key = |sk: &str| Item::from([(PK.into(), s(lead_pk(id))), (SK.into(), s(sk))]);
        // Both candidates in one round trip: the lead itself, or the alias a merge left.
        let wanted = KeysAndAttributes::builder()
            .keys(key(PROFILE))
            .keys(key(ALIAS))
            .consistent_read(true)
            .projection_expression("#sk, #into")
            .expression_attribute_names("#sk", SK)
            .expression_attribute_names("#into", INTO)
            .build()
            .map_err(|e| build_failed(OP, &e))?;
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, wanted)
            .send()
            .await
            .map_err(|e| unavailable(OP, &e))?;
        if out.unprocessed_keys.as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(StoreError::Unavailable(format!("{OP}: DynamoDB left the read unprocessed (throttled)")));
        }
        let found = out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default();
        if found.iter().any(|item| str_attr(item, SK) == Some(PROFILE)) {
            return Ok(Some(id));
        }
        found.iter().find(|item| str_attr(item, SK) == Some(ALIAS)).map(|a| lead_id_attr(a, INTO, "alias")).transpose()
    }

    async fn get_lead(&self, id: LeadId) -> Result<Option<Lead>, StoreError> {
        let Some(item) = self.get_item("get lead", lead_pk(id), PROFILE).await? else {
            return Ok(None);
        };
        lead_of(&item).map(Some)
    }

    async fn find_by_email_key(&self, email_key: &str) -> Result<Option<LeadId>, StoreError> {
        self.get_item("find by email key", email_pk(email_key), EMAIL_SK)
            .await?
            .map(|item| lead_id_attr(&item, LEAD_ID, "email key"))
            .transpose()
    }

    async fn erase_lead(&self, tombstone: &Lead, email_key: Option<&str>) -> Result<(), StoreError> {
        const OP: &str = "erase lead";
        let id = tombstone.id;
        // The profile and the email key go in one transaction; a key that points at another
        // lead (the address was taken over after a merge) is left alone.
        let mut email = email_key;
        let mut outcome = None;
        for _ in 0..ERASE_ATTEMPTS {
            let Some(stored) = self.get_item(OP, lead_pk(id), PROFILE).await? else {
                // Nothing to replace; the trail and the key may still be there.
                outcome = Some(Erasure::NothingToWrite);
                break;
            };
            let expected = num_u64(&stored, VERSION, "lead")?;
            if is_erased(&stored) {
                // A redelivered erasure: finish what the first one may have left.
                outcome = Some(Erasure::NothingToWrite);
                break;
            }
            // One version past the stored one, even if a write came in since the tombstone was
            // made: the erasure wins, and that writer's conditional write fails.
            let tombstone = Lead { version: expected.saturating_add(1), ..tombstone.clone() };
            let old_open = str_attr(&stored, OWNER_OPEN).map(str::to_string);
            let mut cond = Cond::new("#v = :expected").name("#v", VERSION).value(":expected", n(expected));
            cond = match &old_open {
                Some(rep) => cond.and("#o = :old_open").name("#o", OWNER_OPEN).value(":old_open", s(rep)),
                None => cond.and("attribute_not_exists(#o)").name("#o", OWNER_OPEN),
            };
            let mut items = vec![cond.put(&self.table, tombstone_item(&tombstone)?, false)?];
            if let Some(key) = email {
                items.push(email_key_delete(&self.table, key, id)?);
            }
            // An erased lead is closed: its rep's open count drops.
            if let Some(rep) = &old_open {
                items.push(load_update(&self.table, rep, -1)?);
            }
            let Some(reasons) = self.transact(OP, items).await? else {
                outcome = Some(Erasure::Written);
                break;
            };
            if email.is_some() && reasons.get(1).and_then(CancellationReason::code) == Some(CONDITIONAL_CHECK_FAILED) {
                // The key belongs to another lead now: not ours to delete.
                email = None;
            }
            // Otherwise the lead changed between the read and the write: read again.
        }
        match outcome {
            None => {
                return Err(StoreError::Unavailable(format!(
                    "{OP} {id}: the lead kept changing while it was erased; retry"
                )));
            }
            // The key went with the profile, or belongs to another lead.
            Some(Erasure::Written) => {}
            Some(Erasure::NothingToWrite) => {
                if let Some(key) = email {
                    self.delete_email_key_of(key, id).await?;
                }
            }
        }
        self.delete_activities(id).await
    }
}
