//! `web-bench`: how fast the web server renders a logged-in page.
//!
//! Logs one customer in through the log-in form's server function, then
//! keeps `--connections` requests for `--path` in flight for `--duration`,
//! each on its own connection with the same session cookie, and prints
//! requests per second and latency percentiles (HdrHistogram, µs).
//! Every answer must be 200 and a whole page; anything else counts as an
//! error and makes the run fail.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use reqwest::header::{ACCEPT, COOKIE, ORIGIN, SET_COOKIE};

#[derive(Parser)]
#[command(about = "Load the web server with one logged-in customer's page views")]
struct Cli {
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    url: String,
    #[arg(long)]
    username: String,
    #[arg(long, env = "WEB_BENCH_PASSWORD", hide_env_values = true)]
    password: String,
    /// The page to load.
    #[arg(long, default_value = "/accounts")]
    path: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 50)]
    connections: usize,
    /// Seconds to measure, after a 3-second warm-up.
    #[arg(long, default_value_t = 20)]
    duration: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cookie = log_in(&cli).await?;

    let warm_up = Instant::now() + Duration::from_secs(3);
    let end = warm_up + Duration::from_secs(cli.duration);
    let mut workers = Vec::new();
    for _ in 0..cli.connections {
        let (url, cookie) = (format!("{}{}", cli.url, cli.path), cookie.clone());
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()?;
            let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            let mut errors = 0u64;
            loop {
                let started = Instant::now();
                if started >= end {
                    break;
                }
                let page = client
                    .get(&url)
                    .header(COOKIE, &cookie)
                    .header(ACCEPT, "text/html")
                    .send()
                    .await;
                let whole = match page {
                    Ok(response) if response.status().is_success() => response
                        .text()
                        .await
                        .map(|body| body.contains("</html>"))
                        .unwrap_or(false),
                    _ => false,
                };
                if started < warm_up {
                    continue;
                }
                if whole {
                    latencies.record(started.elapsed().as_micros().max(1) as u64)?;
                } else {
                    errors += 1;
                }
            }
            anyhow::Ok((latencies, errors))
        }));
    }
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut errors = 0;
    for worker in workers {
        let (latencies, failed) = worker.await??;
        all.add(latencies)?;
        errors += failed;
    }
    let ms = |quantile: f64| all.value_at_quantile(quantile) as f64 / 1000.0;
    println!(
        "{} {} connections {}s: {:.0} requests/s, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms, errors {}",
        cli.path,
        cli.connections,
        cli.duration,
        all.len() as f64 / cli.duration as f64,
        ms(0.5),
        ms(0.9),
        ms(0.99),
        all.max() as f64 / 1000.0,
        errors
    );
    if errors > 0 {
        bail!("{errors} requests failed");
    }
    Ok(())
}

/// Logs in as a browser without JavaScript would; returns the session cookie.
async fn log_in(cli: &Cli) -> anyhow::Result<String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let response = client
        .post(format!("{}/api/log_in", cli.url))
        .header(ORIGIN, &cli.url)
        .header(ACCEPT, "text/html")
        .form(&[
            ("username", cli.username.as_str()),
            ("password", cli.password.as_str()),
        ])
        .send()
        .await
        .context("could not reach the web server")?;
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if location.contains("__err") || !response.status().is_redirection() {
        bail!("the log-in failed ({})", response.status());
    }
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("ledgerline_session="))
        .and_then(|value| value.split(';').next())
        .map(str::to_owned)
        .context("the log-in set no session cookie")
}
