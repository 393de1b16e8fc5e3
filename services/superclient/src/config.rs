//! The command line and environment every service shares.

/// How a service instance reaches its database and the bus, and whom it serves.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// Address of the HTTP API (default: 127.0.0.1 and the service's own port).
    #[arg(long, env = "LISTEN")]
    pub listen: Option<String>,
    /// PostgreSQL URL; the service keeps its tables in a schema of its own name.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// The bus's WebSocket address.
    #[arg(long, env = "BUS_URL", default_value = "ws://127.0.0.1:8081/bus")]
    pub bus_url: String,
    /// The bus's bearer token, if it has one.
    #[arg(long, env = "BUS_TOKEN", hide_env_values = true)]
    pub bus_token: Option<String>,
    /// Callers of the HTTP API must present this bearer token.
    #[arg(long, env = "SERVICE_TOKEN", hide_env_values = true)]
    pub service_token: String,
    /// Most live events applied in one database transaction.
    #[arg(long, env = "MAX_BATCH", default_value_t = 500)]
    pub max_batch: usize,
}
