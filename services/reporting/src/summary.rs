//! One line of text per event, for lists: what happened, to which key, for
//! how much. Made from the payload when the event is applied, so that no
//! page has to decode payloads. Only what the payload shows anyway: there
//! is nothing secret in the events this service applies.

use rust_decimal::Decimal;

/// The longest summary, in characters.
pub const MAX_CHARS: usize = 120;

fn money(amount: Decimal) -> String {
    format!("£{}", events::format_money(amount))
}

/// Cut to [`MAX_CHARS`] characters (not bytes: a reference may be any text).
pub fn fit(text: String) -> String {
    if text.chars().count() <= MAX_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_CHARS - 1).collect();
    cut.push('…');
    cut
}

pub fn account_requested(username: &str) -> String {
    fit(format!("{username} asked for an account"))
}

pub fn account_created(account_id: i64, username: &str) -> String {
    fit(format!("acc-{account_id} opened for {username}"))
}

/// A credit (`sign` `+`) or a debit (`-`): a deposit or withdrawal when it
/// is no transfer's.
pub fn movement(account_id: i64, sign: char, amount: Decimal, transaction: Option<i64>) -> String {
    let what = match (transaction, sign) {
        (Some(id), _) => format!("trans-{id}"),
        (None, '+') => "deposit".to_owned(),
        (None, _) => "withdrawal".to_owned(),
    };
    fit(format!("acc-{account_id} {sign}{} ({what})", money(amount)))
}

/// What a transfer's events say about it.
pub struct Transfer<'a> {
    pub transaction_id: i64,
    pub from: i64,
    pub to: i64,
    pub amount: Decimal,
    pub reference: &'a str,
    pub username: &'a str,
}

pub fn pending(transfer: &Transfer<'_>) -> String {
    let reference = match transfer.reference {
        "" => String::new(),
        text => format!(", ref \"{text}\""),
    };
    fit(format!(
        "trans-{}: {} from {} to {}{reference} by {}",
        transfer.transaction_id,
        money(transfer.amount),
        transfer.from,
        transfer.to,
        transfer.username
    ))
}

pub fn accepted(transfer: &Transfer<'_>) -> String {
    fit(format!(
        "accepted: {} from {} to {}",
        money(transfer.amount),
        transfer.from,
        transfer.to
    ))
}

pub fn rejected(reason: &str) -> String {
    fit(format!("rejected: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_read_as_the_console_shows_them() {
        let transfer = Transfer {
            transaction_id: 4,
            from: 1,
            to: 2,
            amount: Decimal::new(500, 2),
            reference: "rent",
            username: "alice",
        };
        assert_eq!(
            pending(&transfer),
            "trans-4: £5.00 from 1 to 2, ref \"rent\" by alice"
        );
        assert_eq!(
            movement(3, '+', Decimal::new(30, 0), None),
            "acc-3 +£30.00 (deposit)"
        );
        assert_eq!(
            movement(3, '-', Decimal::new(5, 0), Some(4)),
            "acc-3 -£5.00 (trans-4)"
        );
        assert_eq!(
            rejected("insufficient funds"),
            "rejected: insufficient funds"
        );
    }

    #[test]
    fn a_long_reference_is_cut_at_120_characters() {
        let reference = "é".repeat(300);
        let transfer = Transfer {
            transaction_id: 1,
            from: 1,
            to: 2,
            amount: Decimal::ONE,
            reference: &reference,
            username: "bob",
        };
        let text = pending(&transfer);
        assert_eq!(text.chars().count(), MAX_CHARS);
        assert!(text.ends_with('…'));
    }
}
