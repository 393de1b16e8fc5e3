-- The web app's own schema. Each component of Ledgerline owns one schema.
CREATE SCHEMA IF NOT EXISTS web;

-- Checks of the path browser -> server function -> Postgres, recorded by the
-- system status panel on the home page.
CREATE TABLE web.status_checks (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    postgres_version TEXT        NOT NULL,
    schema_version   BIGINT      NOT NULL,
    checked_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
