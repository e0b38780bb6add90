//! Who may see and change what agents save for themselves or share with
//! the team (canned replies, views): one rule for all of them.

use crate::domain::Role;
use crate::store::User;

/// Whether `me` may see (and use) a thing owned by `owner` (`None`:
/// shared with the team).
pub fn may_see(owner: Option<i64>, me: &User) -> bool {
    owner.is_none_or(|o| o == me.id)
}

/// Whether `me` may change or delete it: their own; a shared one they
/// made; admins every shared one (built-in ones, made by nobody, included).
pub fn may_change(owner: Option<i64>, created_by: Option<i64>, me: &User) -> bool {
    match owner {
        Some(o) => o == me.id,
        None => me.role == Role::Admin || created_by == Some(me.id),
    }
}
