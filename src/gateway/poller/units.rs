//! Planning the fetches of a mailbox: listing chunks cut into units (whole
//! mails in groups under a byte budget, a too-large mail on its own), the
//! groups as fetched and as landed in the store, and UID sets.

use crate::mail::MAX_MAIL_BYTES;
use crate::store::Backend;
use crate::store::inbound::Fetched;

/// A UID and the size the server reports for it.
pub(super) type UidSize = (u32, u32);

/// Most bytes fetched in one round trip (and stored in one transaction).
///
/// On SQLite a group's rows wait for the processor's batch to release the
/// write lock, so the poller stores about one group per batch: with 2 MB,
/// batches shrank to ~100 mails. On PostgreSQL nothing waits so, and the
/// bytes travel in the transaction: 4 MB groups put the daemon's peak RSS
/// at 101 MB there (2 MB: the figures in the README).
pub(super) fn fetch_bytes(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 4 * 1024 * 1024,
        Backend::Postgres => 2 * 1024 * 1024,
    }
}

/// One UID FETCH of the pipeline: a group of mails fetched whole, or one
/// mail too large to download (its header only).
pub(super) struct Unit {
    pub(super) uids: Vec<u32>,
    /// The size the server reported, for a mail too large to download.
    pub(super) too_large: Option<u32>,
    /// Set on the last unit of a listing chunk: once it is stored, every
    /// UID up to this one is, and the mailbox's position moves here.
    pub(super) position: Option<i64>,
}

/// The units of one listing chunk: each too-large mail on its own, then
/// the others in groups of at most `budget` bytes; the last carries the
/// chunk's position (an empty unit, if the server listed none of the chunk
/// any more).
pub(super) fn units(chunk: &[u32], sizes: &[UidSize], budget: usize) -> Vec<Unit> {
    let (large, normal): (Vec<UidSize>, Vec<UidSize>) = sizes
        .iter()
        .copied()
        .partition(|(_, size)| *size as usize > MAX_MAIL_BYTES);
    let mut units: Vec<Unit> = large
        .iter()
        .map(|(uid, size)| Unit {
            uids: vec![*uid],
            too_large: Some(*size),
            position: None,
        })
        .chain(size_groups(&normal, budget).into_iter().map(|uids| Unit {
            uids,
            too_large: None,
            position: None,
        }))
        .collect();
    // Mails the server listed but did not return (expunged meanwhile) are passed over.
    let position = chunk.last().map(|u| i64::from(*u));
    match units.last_mut() {
        Some(last) => last.position = position,
        None => units.push(Unit {
            uids: Vec::new(),
            too_large: None,
            position,
        }),
    }
    units
}

/// The bodies (or, for a mail too large, the header) of one fetched unit.
pub(super) struct FetchedGroup {
    pub(super) fetches: Vec<async_imap::types::Fetch>,
    pub(super) unit: Unit,
}

impl FetchedGroup {
    /// The group's mails as the store takes them; a mail too large to
    /// download goes to quarantine with its size in the reason.
    pub(super) fn mails(&self) -> Vec<Fetched<'_>> {
        self.fetches
            .iter()
            .filter_map(|f| {
                let uid = f.uid?;
                let (raw, quarantine) = match self.unit.too_large {
                    Some(size) => {
                        let reason = format!(
                            "the mail is {size} bytes, more than the {MAX_MAIL_BYTES} accepted; only its header was kept"
                        );
                        (f.header().unwrap_or_default(), Some(reason))
                    }
                    None => (f.body()?, None),
                };
                Some(Fetched {
                    uid: i64::from(uid),
                    raw,
                    quarantine,
                })
            })
            .collect()
    }
}

/// A unit between the stages of [`Poller::sync`]: its bytes committed to
/// the mail file (SQLite) or still held for the rows' transaction (PostgreSQL).
pub(super) enum Landed {
    /// UID and quarantine reason of each mail; the bytes are let go.
    Apart {
        mails: Vec<(i64, Option<String>)>,
        position: Option<i64>,
    },
    /// The group as fetched: its bytes go in with the rows.
    Whole(FetchedGroup),
}

impl Landed {
    pub(super) fn from(group: FetchedGroup, apart: bool) -> Landed {
        if !apart {
            return Landed::Whole(group);
        }
        let mails = group
            .mails()
            .into_iter()
            .map(|m| (m.uid, m.quarantine))
            .collect();
        Landed::Apart {
            mails,
            position: group.unit.position,
        }
    }

    /// The mails as the row stage takes them (without bytes when apart).
    pub(super) fn mails(&self) -> Vec<Fetched<'_>> {
        match self {
            Landed::Apart { mails, .. } => mails
                .iter()
                .map(|(uid, quarantine)| Fetched {
                    uid: *uid,
                    raw: &[],
                    quarantine: quarantine.clone(),
                })
                .collect(),
            Landed::Whole(group) => group.mails(),
        }
    }

    /// Where the mailbox's stored position moves with this unit's rows.
    pub(super) fn position(&self) -> Option<i64> {
        match self {
            Landed::Apart { position, .. } => *position,
            Landed::Whole(group) => group.unit.position,
        }
    }
}

/// Splits (uid, size) pairs into groups of at most `budget` bytes (a lone
/// mail larger than that still gets a group of its own).
pub(super) fn size_groups(sizes: &[UidSize], budget: usize) -> Vec<Vec<u32>> {
    let mut groups: Vec<Vec<u32>> = Vec::new();
    let mut bytes = 0usize;
    for (uid, size) in sizes {
        let size = *size as usize;
        match groups.last_mut() {
            Some(group) if bytes + size <= budget => group.push(*uid),
            _ => {
                groups.push(vec![*uid]);
                bytes = 0;
            }
        }
        bytes += size;
    }
    groups
}

/// `a,b,c` for a UID set.
pub(super) fn uid_set(uids: &[u32]) -> String {
    uids.iter()
        .map(|u| u.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    #[test]
    fn fetch_groups_stay_under_the_byte_budget() {
        let budget = 1000;
        let sizes = [
            (1, budget / 2 - 10),
            (2, budget / 2 - 10),
            (3, budget / 2 - 10),
            (4, 10),
            (5, budget + 1),
        ];
        assert_eq!(
            super::size_groups(&sizes, budget as usize),
            vec![vec![1, 2], vec![3, 4], vec![5]]
        );
        assert!(super::size_groups(&[], 1000).is_empty());
    }

    #[test]
    fn a_chunk_ends_in_the_unit_that_moves_the_position() {
        let too_large = crate::mail::MAX_MAIL_BYTES as u32 + 1;
        let sizes = [(10, 400), (11, too_large), (12, 400), (14, 400)];
        let units = super::units(&[10, 11, 12, 13, 14], &sizes, 1000);
        let shape: Vec<_> = units
            .iter()
            .map(|u| (u.uids.clone(), u.too_large, u.position))
            .collect();
        assert_eq!(
            shape,
            vec![
                (vec![11], Some(too_large), None),
                (vec![10, 12], None, None),
                // 13 was listed but not returned: passed over all the same.
                (vec![14], None, Some(14)),
            ]
        );
        // A chunk the server no longer has: one empty unit moves the position.
        let units = super::units(&[20, 21], &[], 1000);
        assert_eq!(units.len(), 1);
        assert!(units[0].uids.is_empty());
        assert_eq!(units[0].position, Some(21));
    }
}
