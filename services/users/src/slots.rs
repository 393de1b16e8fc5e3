//! A customer holds at most ten accounts. Each account request takes one
//! of ten slots, whose request ids (and so whose consistency keys,
//! `creation-{request_id}`) derive from the username: two requests racing
//! for the same slot, on any instances, meet at the bus, where only one
//! can be value 0 of that key. The first account (at sign-up) is slot 0.

use uuid::Uuid;

pub const MAX_ACCOUNTS: usize = 10;

/// Names the request ids of account slots.
const SLOTS: Uuid = Uuid::from_u128(0x7a0e_91c2_5d43_4b8a_8f16_c3d2_0e59_a471);

/// The request id of `username`'s slot `slot`.
pub fn request_id(username: &str, slot: usize) -> Uuid {
    Uuid::new_v5(&SLOTS, format!("{username}\0{slot}").as_bytes())
}

/// Every slot's request id of `username`, in order.
pub fn all(username: &str) -> Vec<Uuid> {
    (0..MAX_ACCOUNTS)
        .map(|slot| request_id(username, slot))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_the_users_own() {
        assert_eq!(request_id("alice", 0), request_id("alice", 0));
        assert_ne!(request_id("alice", 0), request_id("alice", 1));
        assert_ne!(request_id("alice", 1), request_id("alic", 1));
        assert_eq!(all("bob").len(), MAX_ACCOUNTS);
    }
}
