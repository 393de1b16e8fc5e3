//! What the forms share: idempotency keys, labelled fields with their
//! errors, and the amount field checked as it is typed.
//!
//! Every form that changes something carries an idempotency key, made on
//! the server when the form is shown: a double click, a retry or a resent
//! form post carries the same key, and the services act on it once.

use leptos::prelude::*;

use crate::{error::AppError, money::parse_amount};

/// A fresh idempotency key for a form about to be shown.
#[server(endpoint = "new_form_key")]
pub async fn new_form_key() -> Result<String, AppError> {
    Ok(uuid::Uuid::now_v7().to_string())
}

/// How many of `action`'s answers were final (done or refused): a form's
/// key changes with it. After a failure that leaves the outcome open, the
/// next try must carry the same key, so that it cannot act twice.
pub fn settled<I>(action: ServerAction<I>) -> Memo<usize>
where
    I: leptos::server_fn::ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    I::Output: Clone + Send + Sync + 'static,
{
    Memo::new(move |previous: Option<&usize>| {
        let version = action.version().get();
        let is_final = action.value().with(|value| match value {
            Some(Ok(_)) => true,
            Some(Err(error)) => error.is_final(),
            None => false,
        });
        if is_final {
            version
        } else {
            previous.copied().unwrap_or(version)
        }
    })
}

/// The idempotency key of `action`'s form: new once an answer is final.
pub fn form_key<I>(action: ServerAction<I>) -> Resource<Result<String, AppError>>
where
    I: leptos::server_fn::ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    I::Output: Clone + Send + Sync + 'static,
{
    let settled = settled(action);
    Resource::new(move || settled.get(), |_| new_form_key())
}

/// The key's hidden field, or nothing while the key is on its way.
#[component]
pub fn FormKey(key: Resource<Result<String, AppError>>) -> impl IntoView {
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                key.await.ok().map(|key| view! { <input type="hidden" name="form_key" value=key /> })
            })}
        </Transition>
    }
}

/// A labelled text input with its error under it, tied together for
/// screen readers.
#[component]
pub fn Field(
    /// The input's name (the server function's argument).
    name: &'static str,
    label: &'static str,
    /// The form's name, when a page has two forms with the same fields.
    #[prop(optional)]
    form: &'static str,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] autocomplete: Option<&'static str>,
    /// The keyboard a phone shows (`numeric`, say).
    #[prop(optional)]
    inputmode: Option<&'static str>,
    #[prop(optional)] hint: Option<&'static str>,
    #[prop(optional, into)] value: Signal<String>,
    #[prop(optional, into)] error: Signal<Option<String>>,
    #[prop(default = true)] required: bool,
) -> impl IntoView {
    let id = field_id(form, name);
    let error_id = format!("{id}-error");
    let hint_id = format!("{id}-hint");
    let described = {
        let (error_id, hint_id) = (error_id.clone(), hint_id.clone());
        move || {
            let mut ids = Vec::new();
            if hint.is_some() {
                ids.push(hint_id.clone());
            }
            if error.get().is_some() {
                ids.push(error_id.clone());
            }
            (!ids.is_empty()).then(|| ids.join(" "))
        }
    };
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            {hint.map(|hint| view! { <p class="hint" id=hint_id.clone()>{hint}</p> })}
            <input
                id=id
                name=name
                type=kind
                autocomplete=autocomplete
                inputmode=inputmode
                required=required
                value=move || value.get()
                aria-invalid=move || error.get().map(|_| "true")
                aria-describedby=described
            />
            <p class="field-error" id=error_id aria-live="polite">
                {move || error.get()}
            </p>
        </div>
    }
}

/// An amount in pounds: `inputmode="decimal"` (a number keyboard on
/// phones, no spinner that changes money by accident), checked in the
/// browser when the person leaves the field, and again on the server.
#[component]
pub fn AmountField(
    #[prop(default = "amount")] name: &'static str,
    #[prop(default = "Amount (£)")] label: &'static str,
    /// The form's name, when a page has two forms with the same fields.
    #[prop(optional)]
    form: &'static str,
    #[prop(optional, into)] value: Signal<String>,
    /// The server's verdict on the last submission.
    #[prop(optional, into)]
    server_error: Signal<Option<String>>,
) -> impl IntoView {
    let id = field_id(form, name);
    let error_id = format!("{id}-error");
    let typed_error = RwSignal::new(None::<String>);
    let error = Memo::new(move |_| typed_error.get().or_else(|| server_error.get()));
    let check = move |event: leptos::ev::Event| {
        let text = event_target_value(&event);
        typed_error.set(if text.trim().is_empty() {
            None
        } else {
            parse_amount(&text).err()
        });
    };
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <input
                id=id
                name=name
                type="text"
                inputmode="decimal"
                autocomplete="off"
                required=true
                value=move || value.get()
                on:change=check
                aria-invalid=move || error.get().map(|_| "true")
                aria-describedby={
                    let error_id = error_id.clone();
                    move || error.get().map(|_| error_id.clone())
                }
            />
            <p class="field-error" id=error_id aria-live="polite">
                {move || error.get()}
            </p>
        </div>
    }
}

/// A field's element id: unique on the page when forms share field names.
fn field_id(form: &str, name: &str) -> String {
    if form.is_empty() {
        format!("field-{name}")
    } else {
        format!("{form}-{name}")
    }
}

/// The error of the latest submission of `action`, if it failed.
pub fn action_error<I, O>(action: ServerAction<I>) -> Memo<Option<AppError>>
where
    I: leptos::server_fn::ServerFn<Output = O, Error = AppError> + Clone + Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
{
    Memo::new(move |_| action.value().get().and_then(Result::err))
}
