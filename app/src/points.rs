//! Nectar loyalty points on the overview: each account's points, and
//! redeeming them as cashback at 1p a point.
//!
//! The points come from the Nectar service, which only some banks run;
//! the overview shows the accounts without points when it does not, or
//! when it does not answer. Redeeming posts with an idempotency key like
//! every other form; Nectar alone decides whether the points are there.

use leptos::prelude::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    forms::{Field, FormKey, action_error, form_key},
    money::pounds,
    overview::Overview,
    pages::FormError,
};

/// Most points one redemption may take (Nectar's own limit).
pub const MAX_REDEMPTION: i64 = 100_000_000;

/// What the overview can say about points.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Loyalty {
    /// The bank runs no loyalty service (or the person is staff): no
    /// points are shown.
    NotOffered,
    /// Nectar did not answer: the accounts show, the points do not.
    Unavailable,
    Points(Points),
}

/// A customer's points, as Nectar answers `GET /users/{username}/points`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Points {
    pub points: i64,
    pub cash_value: Decimal,
    pub accounts: Vec<AccountPoints>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountPoints {
    pub account_id: i64,
    pub points: i64,
}

impl Loyalty {
    /// The points, when there are any to show.
    pub fn points(&self) -> Option<&Points> {
        match self {
            Self::Points(points) => Some(points),
            Self::NotOffered | Self::Unavailable => None,
        }
    }
}

/// "1 point", "2 points".
pub fn points_text(points: i64) -> String {
    if points == 1 {
        "1 point".to_owned()
    } else {
        format!("{points} points")
    }
}

impl Points {
    /// The account's points; one Nectar has not seen yet has none.
    pub fn of(&self, account_id: i64) -> i64 {
        self.accounts
            .iter()
            .find(|account| account.account_id == account_id)
            .map_or(0, |account| account.points)
    }
}

/// How long the overview waits for the points before showing the
/// accounts without them.
#[cfg(feature = "ssr")]
const POINTS_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// The person's points, or why there are none to show.
#[cfg(feature = "ssr")]
pub async fn loyalty(
    services: &crate::server::services::Services,
    user: &crate::server::session::SessionUser,
) -> Loyalty {
    if !services.offers_points() {
        return Loyalty::NotOffered;
    }
    let path = format!("/users/{}/points", user.username);
    let call = user.call();
    let asked = services.nectar::<Points>(reqwest::Method::GET, &path, &call, None::<&()>);
    // The accounts are worth showing without their points, and soon.
    match tokio::time::timeout(POINTS_PATIENCE, asked).await {
        Ok(Ok(points)) => Loyalty::Points(points),
        Ok(Err(error)) => {
            tracing::warn!(%error, "the points could not be read");
            Loyalty::Unavailable
        }
        Err(_) => {
            tracing::warn!("Nectar did not answer within {POINTS_PATIENCE:?}");
            Loyalty::Unavailable
        }
    }
}

/// A redemption done: what the person is told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redeemed {
    pub account_id: i64,
    pub points: i64,
    pub cashback: Decimal,
}

/// Checks a number of points as typed.
pub fn parse_points(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let points = text
        .parse::<i64>()
        .ok()
        .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| "enter a whole number of points, such as 250".to_owned())?;
    match points {
        0 => Err("enter at least 1 point".to_owned()),
        p if p > MAX_REDEMPTION => Err(format!("at most {MAX_REDEMPTION} points at once")),
        p => Ok(p),
    }
}

/// Redeems points of one account as cashback into that account.
#[server(endpoint = "redeem_points")]
pub async fn redeem_points(
    account_id: String,
    points: String,
    form_key: String,
) -> Result<Redeemed, AppError> {
    use crate::server::{services::ServiceError, session, state};
    use reqwest::StatusCode;
    use serde_json::Value;
    let user = session::signed_in().await?;
    let not_yours = || AppError::invalid("account_id", "choose one of your accounts");
    let account_id = account_id
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(not_yours)?;
    let points = parse_points(&points).map_err(|message| AppError::invalid("points", message))?;
    let mut call = user.call();
    call.idempotency_key = Some(&form_key);
    let path = format!("/accounts/{account_id}/redemptions");
    let body = serde_json::json!({ "points": points });
    let answer: Value = state::services()?
        .nectar(reqwest::Method::POST, &path, &call, Some(&body))
        .await
        .map_err(|error| match &error {
            ServiceError::Api { code, message, .. } if code == "insufficient_points" => {
                AppError::invalid("points", message.clone())
            }
            ServiceError::Api { status, .. } if *status == StatusCode::NOT_FOUND => not_yours(),
            _ => error.into(),
        })?;
    redeemed(account_id, &answer).ok_or_else(|| {
        tracing::warn!(%answer, "Nectar's answer to a redemption could not be read");
        AppError::unconfirmed()
    })
}

/// What Nectar did, from its answer: the route's own, or, for a retry
/// whose first try's answer was lost, the events it published.
#[cfg(feature = "ssr")]
fn redeemed(account_id: i64, answer: &serde_json::Value) -> Option<Redeemed> {
    let (points, cashback) = if answer["replayed"] == true {
        let events = answer["events"].as_array()?;
        let of = |kind: &str| events.iter().find(|event| event["type"] == kind);
        (
            &of("NectarDebit")?["data"]["points"],
            &of("ConfirmedCredit")?["data"]["amount"],
        )
    } else {
        (&answer["points_redeemed"], &answer["cashback"])
    };
    Some(Redeemed {
        account_id,
        points: points.as_i64()?,
        cashback: cashback.as_str()?.parse().ok()?,
    })
}

/// Whether the overview offers points: the bank runs Nectar and the
/// person is a customer. Asked once a page, so that the card and its form
/// are drawn once, and only their figures change.
#[server(endpoint = "points_offered")]
pub async fn points_offered() -> Result<bool, AppError> {
    use crate::server::{session, state};
    let user = session::signed_in().await?;
    Ok(!user.staff && state::services()?.offers_points())
}

/// The points card, when the bank offers points. `overview` brings the
/// figures; `action` is the page's, whose answers refresh them.
#[component]
pub fn PointsSection(
    overview: Resource<Result<Overview, AppError>>,
    action: ServerAction<RedeemPoints>,
) -> impl IntoView {
    let offered = Resource::new(|| (), |_| points_offered());
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                matches!(offered.await, Ok(true)).then(|| view! { <PointsCard overview action /> })
            })}
        </Transition>
    }
}

/// The points and the redemption form. The form is drawn once: a change of
/// the points (live, or after a redemption) redraws only the figures and
/// the account choices, so focus and what was typed stay.
#[component]
fn PointsCard(
    overview: Resource<Result<Overview, AppError>>,
    action: ServerAction<RedeemPoints>,
) -> impl IntoView {
    let key = form_key(action);
    let error = action_error(action);
    let chosen = RwSignal::new(String::new());
    // Once redeemed from, that account stays chosen, even if its points
    // are gone and the first account with points is another now.
    Effect::new(move |_| {
        if let Some(Ok(done)) = action.value().get() {
            chosen.set(done.account_id.to_string());
        }
    });
    let done = move || {
        action.value().get().and_then(Result::ok).map(|done| {
            format!(
                "Redeemed {}: {} paid into account {}.",
                points_text(done.points),
                pounds(done.cashback),
                done.account_id
            )
        })
    };
    view! {
        <section class="card" aria-labelledby="points-title" data-testid="points-card">
            <h2 id="points-title">"Nectar points"</h2>
            <Transition fallback=|| view! { <p>"Loading your points…"</p> }>
                {move || Suspend::new(async move {
                    overview.await.ok().map(|overview| view! { <Summary loyalty=overview.loyalty /> })
                })}
            </Transition>
            <p class="muted">
                "Every whole £10 you send earns a point. Redeem points at 1p each: "
                "the cash is paid into the account."
            </p>
            <p role="status" data-testid="redeemed">{done}</p>
            <ActionForm action attr:data-testid="redeem-form">
                <FormKey key />
                <div class="field">
                    <label for="redeem-account_id">"Account"</label>
                    <select
                        id="redeem-account_id"
                        name="account_id"
                        on:change=move |event| chosen.set(event_target_value(&event))
                        aria-invalid=move || {
                            error.get().and_then(|e| e.for_field("account_id")).map(|_| "true")
                        }
                        aria-describedby="redeem-account_id-error"
                    >
                        <Transition fallback=|| ()>
                            {move || Suspend::new(async move {
                                overview.await.ok().map(|overview| account_choices(&overview, chosen))
                            })}
                        </Transition>
                    </select>
                    <p class="field-error" id="redeem-account_id-error" aria-live="polite">
                        {move || error.get().and_then(|e| e.for_field("account_id"))}
                    </p>
                </div>
                <Field
                    name="points"
                    form="redeem"
                    label="Points to redeem"
                    inputmode="numeric"
                    autocomplete="off"
                    error=Signal::derive(move || error.get().and_then(|e| e.for_field("points")))
                />
                <FormError error=Signal::derive(move || error.get().and_then(|e| e.for_form())) />
                <button type="submit" disabled=move || action.pending().get()>
                    "Redeem as cashback"
                </button>
            </ActionForm>
        </section>
    }
}

/// The person's points in all, or why they cannot be shown.
#[component]
fn Summary(loyalty: Loyalty) -> impl IntoView {
    match loyalty {
        Loyalty::Points(points) => view! {
            <p>
                "You have " <strong data-testid="points-total">{points_text(points.points)}</strong>
                ", worth " {pounds(points.cash_value)} " as cashback."
            </p>
        }
        .into_any(),
        Loyalty::Unavailable => view! {
            <p data-testid="points-unavailable">
                "Your points cannot be shown right now. Please try again in a moment."
            </p>
        }
        .into_any(),
        Loyalty::NotOffered => ().into_any(),
    }
}

/// One choice per account, with its points. Until the person chooses, the
/// first account that has points is chosen.
fn account_choices(overview: &Overview, chosen: RwSignal<String>) -> impl IntoView + use<> {
    let points = overview.loyalty.points().cloned();
    let points_of = move |account_id| points.as_ref().map(|points| points.of(account_id));
    let first_with_points = overview
        .accounts
        .iter()
        .map(|account| account.account_id)
        .find(|account_id| points_of(*account_id) > Some(0));
    overview
        .accounts
        .iter()
        .map(|account| {
            let account_id = account.account_id;
            let label = match points_of(account_id) {
                Some(points) => format!("Account {account_id} ({})", points_text(points)),
                None => format!("Account {account_id}"),
            };
            let value = account_id.to_string();
            let selected = {
                let value = value.clone();
                move || match chosen.get() {
                    choice if choice.is_empty() => first_with_points == Some(account_id),
                    choice => choice == value,
                }
            };
            view! { <option value=value selected=selected>{label}</option> }
        })
        .collect_view()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_whole_positive_numbers_within_the_limit() {
        assert_eq!(parse_points(" 250 "), Ok(250));
        assert_eq!(parse_points("1"), Ok(1));
        assert_eq!(parse_points("100000000"), Ok(MAX_REDEMPTION));
        for wrong in ["", "abc", "2.5", "-3", "+3", "1e3", "1 000"] {
            assert_eq!(
                parse_points(wrong),
                Err("enter a whole number of points, such as 250".to_owned()),
                "{wrong:?}"
            );
        }
        assert_eq!(parse_points("0"), Err("enter at least 1 point".to_owned()));
        assert_eq!(
            parse_points("100000001"),
            Err("at most 100000000 points at once".to_owned())
        );
        assert!(parse_points("99999999999999999999").is_err());
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn a_redemption_is_read_from_the_answer_or_from_the_events_sent_again() {
        use serde_json::json;
        let done = Redeemed {
            account_id: 7,
            points: 20,
            cashback: Decimal::new(20, 2),
        };
        let answer = json!({"account_id": 7, "redemption_id": "r", "points_redeemed": 20,
                            "cashback": "0.20", "points": 5, "cash_value": "0.05"});
        assert_eq!(redeemed(7, &answer), Some(done.clone()));
        let replayed = json!({"replayed": true, "events": [
            {"type": "NectarDebit", "key": "nectar-7", "position": 41,
             "data": {"account_id": 7, "points": 20, "redemption_id": "r"}},
            {"type": "ConfirmedCredit", "key": "acc-7", "position": 42,
             "data": {"account_id": 7, "amount": "0.20", "note": "Nectar cashback: 20 points",
                      "transaction_id": null}},
        ]});
        assert_eq!(redeemed(7, &replayed), Some(done));
        assert_eq!(redeemed(7, &json!({"replayed": true, "events": []})), None);
        assert_eq!(
            redeemed(7, &json!({"points_redeemed": 2.5, "cashback": "0.02"})),
            None
        );
    }
}
