//! A database of one's own on the PostgreSQL server at `DATABASE_URL` (or another).

/// A database of this test's own on the server at `DATABASE_URL`, dropped at the end.
pub struct TestDb {
    pub url: String,
    admin_url: String,
    name: String,
}

impl TestDb {
    pub async fn new() -> Self {
        let base = std::env::var("DATABASE_URL")
            .expect("DATABASE_URL must point at a PostgreSQL server (./dev test provides one)");
        Self::on(&base).await
    }

    /// A database of its own on the server of `base` (a URL of any database there).
    pub async fn on(base: &str) -> Self {
        let name = format!("ledgerline_test_{}", uuid::Uuid::now_v7().simple());
        let (prefix, _) = base
            .rsplit_once('/')
            .expect("DATABASE_URL has a database name");
        let admin_url = format!("{prefix}/postgres");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin(&admin_url).await)
            .await
            .expect("create the test database");
        Self {
            url: format!("{prefix}/{name}"),
            admin_url,
            name,
        }
    }

    pub async fn pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.url)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime; a thread of its own may block.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin(&admin_url).await)
                    .await
                    .map(|_| ())
                    .map_err(std::io::Error::other)
            })
        })
        .join();
    }
}

async fn admin(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url)
        .await
        .expect("connect to PostgreSQL")
}
