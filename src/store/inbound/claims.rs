//! Claiming stored mail for processing: one daemon at a time, each its
//! share of the waiting partitions, never a partition another has mail of
//! in flight; releasing claims; and the pure rule that shares partitions.

use super::*;

impl Store {
    /// Claims for `holder` until `now + ttl_ms` up to `limit` unprocessed
    /// mails, in id order, without their bytes (see [`Store::load_raw`]),
    /// from the partitions no other processor has mail of in flight (see
    /// `mail/conversation.rs`): mails of one partition are processed in
    /// arrival order, one batch at a time; other partitions side by side.
    /// Claims are taken one daemon at a time (a transaction-scoped advisory
    /// lock on PostgreSQL, the write lock on SQLite), each taking its share
    /// of the waiting partitions ([`share_of_partitions`]). A dead daemon's
    /// claims, and with them its partitions, lapse after `ttl_ms`.
    pub async fn claim_raw_rows(
        &self,
        holder: &str,
        now: i64,
        ttl_ms: i64,
        limit: i64,
    ) -> Result<Vec<RawMail>> {
        let mut tx = self.begin().await?;
        self.claim_lock(&mut tx).await?;
        let waiting: Vec<(i32, Option<String>, i64)> = sqlx::query_as(
            "SELECT part, CASE WHEN claim_until >= $1 THEN claimed_by END AS holder, MIN(id) \
             FROM inbound WHERE state = 'new' GROUP BY 1, 2",
        )
        .bind(now)
        .fetch_all(&mut *tx.conn)
        .await?;
        // The live daemons (each renews a lease): a share counts them all,
        // even those between two claims.
        let (daemons,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM leases WHERE expires_at > $1 AND name LIKE $2")
                .bind(now)
                .bind(format!("{}%", crate::store::leases::DAEMON_PREFIX))
                .fetch_one(&mut *tx.conn)
                .await?;
        let parts = share_of_partitions(&waiting, holder, usize::try_from(daemons).unwrap_or(1));
        if parts.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let list = parts
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE inbound SET claimed_by = $1, claim_until = $2, attempts = attempts + 1 WHERE id IN \
             (SELECT id FROM inbound WHERE state = 'new' AND part IN ({list}) \
             AND (claim_until IS NULL OR claim_until < $3) ORDER BY id LIMIT $4{}) RETURNING {RAW_COLS}",
            self.skip_locked()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(holder)
            .bind(now.saturating_add(ttl_ms))
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx.conn)
            .await?;
        let mut mails = rows.iter().map(raw_from).collect::<Result<Vec<_>>>()?;
        tx.commit().await?;
        mails.sort_by_key(|m| m.id);
        Ok(mails)
    }

    /// Makes claims one at a time across daemons, until the transaction
    /// ends (PostgreSQL; SQLite's write lock already does).
    async fn claim_lock(&self, tx: &mut Tx) -> Result<()> {
        if self.backend == Backend::Postgres {
            // `pg_advisory_xact_lock` returns void, which no driver type carries: count it.
            sqlx::query("SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock($1)) AS claiming")
                .bind(CLAIM_LOCK)
                .execute(&mut *tx.conn)
                .await?;
        }
        Ok(())
    }

    /// Reads the bytes of claimed mails. They never change once stored:
    /// they are read after the claim is committed, so that the database's
    /// write lock (SQLite has one for all writers) is not held while
    /// megabytes are read, and may be read on another thread meanwhile.
    pub async fn load_raw(&self, mails: &mut [RawMail]) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        load_bytes(&mut conn, self.backend, mails).await
    }

    /// Claims one stored mail by id, if it is waiting, unclaimed, and no
    /// other processor has mail of its partition in flight (then that one
    /// takes it in order).
    pub async fn claim_raw_id(
        &self,
        id: i64,
        holder: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<Option<RawMail>> {
        let mut tx = self.begin().await?;
        self.claim_lock(&mut tx).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE inbound SET claimed_by = $1, claim_until = $2, attempts = attempts + 1 \
             WHERE id = $4 AND state = 'new' AND (claim_until IS NULL OR claim_until < $3) \
             AND NOT EXISTS (SELECT 1 FROM inbound o WHERE o.state = 'new' AND o.part = inbound.part \
             AND o.claim_until >= $3 AND o.claimed_by <> $1) RETURNING {RAW_COLS}"
        )))
        .bind(holder)
        .bind(now.saturating_add(ttl_ms))
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx.conn)
        .await?;
        let mut mails = row
            .as_ref()
            .map(raw_from)
            .transpose()?
            .into_iter()
            .collect::<Vec<_>>();
        load_bytes(&mut tx.conn, self.backend, &mut mails).await?;
        tx.commit().await?;
        Ok(mails.pop())
    }

    /// Gives claimed mails back at once (after a transient fault), so that
    /// they are retried without waiting for the claims to lapse.
    pub async fn release_claims(&self, ids: &[i64], holder: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        for id in ids {
            sqlx::query("UPDATE inbound SET claimed_by = NULL, claim_until = NULL WHERE id = $1 AND claimed_by = $2 AND state = 'new'")
                .bind(*id)
                .bind(holder)
                .execute(&mut *tx.conn)
                .await?;
        }
        tx.commit().await
    }

    /// How many processor workers a daemon runs. One on both backends for
    /// now: mail is processed in arrival order, so a reply always finds the
    /// ticket its parent opened. (Concurrent batches were measured to thread
    /// a reply whose parent sat in another, uncommitted batch onto a new
    /// ticket; per-mailbox ordering must come first, see the notes of issue 7.)
    pub fn writers(&self) -> usize {
        1
    }

    /// On SQLite (one daemon at a time) a starting daemon releases claims
    /// left by its killed predecessor instead of waiting for them to lapse.
    /// On PostgreSQL claims of other daemons are left to expire.
    pub async fn release_stale_claims(&self) -> Result<u64> {
        if self.backend != Backend::Sqlite {
            return Ok(0);
        }
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE inbound SET claimed_by = NULL, claim_until = NULL WHERE state = 'new' AND claimed_by IS NOT NULL")
            .execute(&mut *tx.conn)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }
}

/// The advisory lock (PostgreSQL) under which claims are taken.
const CLAIM_LOCK: i64 = 0x706f_7374_6465_736b; // "postdesk"

/// The partitions a processor may claim from now, given the waiting mail
/// as (partition, holder of an unexpired claim, lowest id) groups and the
/// number of live daemons: never one another processor has mail of in
/// flight (order within a partition), and of the rest its share — the
/// partitions with waiting mail divided by the daemons (or by the
/// processors holding claims, itself included, if more) — those it already
/// holds first (its next batch goes on where the last left off), then the
/// ones waiting longest. One processor alone takes every waiting partition.
pub fn share_of_partitions(
    waiting: &[(i32, Option<String>, i64)],
    me: &str,
    daemons: usize,
) -> Vec<i32> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut others: BTreeSet<&str> = BTreeSet::new();
    let mut held_by_others: BTreeSet<i32> = BTreeSet::new();
    let mut mine: BTreeSet<i32> = BTreeSet::new();
    let mut free: BTreeMap<i32, i64> = BTreeMap::new();
    let mut all: BTreeSet<i32> = BTreeSet::new();
    for (part, holder, first) in waiting {
        all.insert(*part);
        match holder.as_deref() {
            None => {
                let oldest = free.entry(*part).or_insert(*first);
                *oldest = (*oldest).min(*first);
            }
            Some(h) if h == me => {
                mine.insert(*part);
            }
            Some(h) => {
                others.insert(h);
                held_by_others.insert(*part);
            }
        }
    }
    let share = all.len().div_ceil((others.len() + 1).max(daemons)).max(1);
    let mut open: Vec<(bool, i64, i32)> = free
        .into_iter()
        .filter(|(part, _)| !held_by_others.contains(part))
        .map(|(part, first)| (!mine.contains(&part), first, part))
        .collect();
    open.sort_unstable();
    open.into_iter()
        .take(share)
        .map(|(.., part)| part)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::share_of_partitions;

    fn group(part: i32, holder: Option<&str>, first: i64) -> (i32, Option<String>, i64) {
        (part, holder.map(str::to_string), first)
    }

    #[test]
    fn one_processor_alone_takes_every_waiting_partition() {
        let waiting = [group(3, None, 30), group(1, None, 10), group(2, None, 20)];
        assert_eq!(share_of_partitions(&waiting, "a", 1), vec![1, 2, 3]);
        assert!(share_of_partitions(&[], "a", 1).is_empty());
    }

    #[test]
    fn a_partition_in_flight_elsewhere_is_never_taken() {
        // b holds partition 1 (rows 10..); its later rows wait unclaimed.
        let waiting = [
            group(1, Some("b"), 10),
            group(1, None, 15),
            group(2, None, 20),
        ];
        assert_eq!(share_of_partitions(&waiting, "a", 1), vec![2]);
        // Only b's own partition waits: a takes nothing.
        assert!(share_of_partitions(&waiting[..2], "a", 1).is_empty());
        // b, the only processor in flight, goes on with its own first and
        // takes the rest.
        assert_eq!(share_of_partitions(&waiting, "b", 1), vec![1, 2]);
    }

    #[test]
    fn processors_share_the_partitions_and_keep_their_own() {
        // Six partitions, b in flight on two: a takes half (3), its own
        // partition 6 first, then the longest waiting.
        let waiting = [
            group(1, Some("b"), 1),
            group(2, Some("b"), 2),
            group(3, None, 3),
            group(4, None, 4),
            group(5, None, 5),
            group(6, Some("a"), 6),
            group(6, None, 60),
        ];
        assert_eq!(share_of_partitions(&waiting, "a", 1), vec![6, 3, 4]);
        // With a third processor in flight on one, the share is two.
        let mut three = waiting.to_vec();
        three[4] = group(5, Some("c"), 5);
        assert_eq!(share_of_partitions(&three, "a", 1), vec![6, 3]);
    }

    #[test]
    fn a_daemon_between_claims_keeps_its_share() {
        // Three live daemons, only a in flight so far: a takes a third of
        // the waiting partitions, not all of them, so the others find work.
        let waiting: Vec<_> = (0..9).map(|p| group(p, None, i64::from(p))).collect();
        assert_eq!(share_of_partitions(&waiting, "a", 3), vec![0, 1, 2]);
        let mut later = waiting.clone();
        later[0] = group(0, Some("a"), 0);
        later.push(group(0, None, 100));
        assert_eq!(share_of_partitions(&later, "a", 3), vec![0, 1, 2]);
        assert_eq!(share_of_partitions(&later, "b", 3), vec![1, 2, 3]);
    }
}
