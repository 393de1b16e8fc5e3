//! Bar charts as plain SVG, drawn on the server: they need no script, no
//! charting library and no fonts of their own, scale with the page, and
//! carry a title for screen readers (each chart has its data table next
//! to it for the numbers themselves). Values are exact decimals; only the
//! bars' geometry is rounded to whole SVG units.

use leptos::prelude::*;
use rust_decimal::{Decimal, prelude::ToPrimitive};

/// The drawing area, in SVG units; the SVG scales to the page's width.
const WIDTH: i64 = 640;
const HEIGHT: i64 = 220;
const LEFT: i64 = 56;
const BOTTOM: i64 = 56;
const TOP: i64 = 12;
/// The widest a bar gets, however few there are.
const MAX_BAR: i64 = 48;
/// About how wide one character of a tick label is.
const CHAR_WIDTH: i64 = 6;

/// One series of bars, drawn side by side with the others.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub values: Vec<Decimal>,
}

/// A bar chart: one group per label, with one bar per series side by
/// side, or (`stacked`) the series piled into one bar.
#[component]
pub fn BarChart(
    /// What the chart shows, read out by screen readers.
    title: String,
    labels: Vec<String>,
    series: Vec<Series>,
    #[prop(optional)] stacked: bool,
) -> impl IntoView {
    let column_total =
        |i: usize| -> Decimal { series.iter().filter_map(|s| s.values.get(i).copied()).sum() };
    let max = if stacked {
        (0..labels.len())
            .map(column_total)
            .fold(Decimal::ZERO, Decimal::max)
    } else {
        series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .fold(Decimal::ZERO, Decimal::max)
    };
    let plot_height = HEIGHT - BOTTOM - TOP;
    let groups = labels.len().max(1) as i64;
    let group_width = (WIDTH - LEFT) / groups;
    let bars = if stacked {
        1
    } else {
        series.len().max(1) as i64
    };
    let bar_width = ((group_width * 8 / 10) / bars).clamp(1, MAX_BAR);
    // The bars of a group, centred in it.
    let inset = (group_width - bar_width * bars) / 2;
    let scale = |value: Decimal| -> i64 {
        if max.is_zero() {
            0
        } else {
            (value * Decimal::from(plot_height) / max)
                .round()
                .to_i64()
                .unwrap_or(0)
        }
    };
    // Every label when they fit, else about a dozen of them.
    let label_every = (labels.len() / 12).max(1);
    // Where each stacked bar's next piece starts (its height so far).
    let mut piled = vec![0_i64; labels.len()];
    let mut rects = Vec::new();
    for (s, one) in series.iter().enumerate() {
        for (i, value) in one.values.iter().enumerate() {
            let height = scale(*value);
            let slot = if stacked { 0 } else { s as i64 };
            let x = LEFT + i as i64 * group_width + inset + slot * bar_width;
            let below = if stacked {
                piled.get(i).copied().unwrap_or(0)
            } else {
                0
            };
            if let Some(pile) = piled.get_mut(i) {
                *pile += height;
            }
            let y = TOP + plot_height - below - height;
            rects.push(view! {
                <rect class=format!("bar series-{s}") x=x y=y width=bar_width height=height>
                    <title>{format!("{}: {}", one.name, value)}</title>
                </rect>
            });
        }
    }
    let ticks = labels
        .iter()
        .enumerate()
        .filter(|(i, _)| i % label_every == 0)
        .map(|(i, label)| {
            let x = LEFT + i as i64 * group_width + group_width / 2;
            let y = HEIGHT - BOTTOM + 14;
            // Labels wider than their group are slanted, so none overlap.
            let slanted = label.chars().count() as i64 * CHAR_WIDTH > group_width;
            let anchor = if slanted { "end" } else { "middle" };
            let turn = slanted.then(|| format!("rotate(-25 {x} {y})"));
            view! {
                <text class="tick" x=x y=y text-anchor=anchor transform=turn>{label.clone()}</text>
            }
        })
        .collect_view();
    let legend = (series.len() > 1).then(|| {
        view! {
            <ul class="legend">
                {series
                    .iter()
                    .enumerate()
                    .map(|(s, one)| view! {
                        <li><span class=format!("swatch series-{s}") aria-hidden="true"></span>{one.name.clone()}</li>
                    })
                    .collect_view()}
            </ul>
        }
    });
    if labels.is_empty() {
        return view! { <p class="muted">"Nothing to chart yet."</p> }.into_any();
    }
    view! {
        <figure class="chart">
            <svg
                viewBox=format!("0 0 {WIDTH} {HEIGHT}")
                role="img"
                aria-label=title.clone()
                preserveAspectRatio="xMidYMid meet"
            >
                <title>{title.clone()}</title>
                <line class="axis" x1=LEFT y1=TOP x2=LEFT y2=HEIGHT - BOTTOM />
                <line class="axis" x1=LEFT y1=HEIGHT - BOTTOM x2=WIDTH y2=HEIGHT - BOTTOM />
                <text class="tick" x=LEFT - 6 y=TOP + 4 text-anchor="end">{max.normalize().to_string()}</text>
                <text class="tick" x=LEFT - 6 y=HEIGHT - BOTTOM text-anchor="end">"0"</text>
                {rects}
                {ticks}
            </svg>
            {legend}
        </figure>
    }
    .into_any()
}
