-- The lake's own bookkeeping: the domains it holds and the ledger of load runs.

CREATE SCHEMA IF NOT EXISTS lake;

-- One row per domain; lake.install_domain() creates its layers from this description.
CREATE TABLE lake.domains (
    domain      text PRIMARY KEY CHECK (domain ~ '^[a-z][a-z0-9_]*$'),
    key_columns text[] NOT NULL,   -- columns of the natural key, in order
    key_types   text[] NOT NULL,   -- 'text' or 'bigint', one per key column
    key_fields  text[] NOT NULL,   -- the payload field each key column comes from
    on_change   regproc,           -- called after each propagation (term: active_terms)
    CHECK (cardinality(key_columns) > 0
           AND cardinality(key_types) = cardinality(key_columns)
           AND cardinality(key_fields) = cardinality(key_columns)
           AND key_types <@ ARRAY['text', 'bigint'])
);

-- The run ledger: one row per load run; counts are added batch by batch, in the batch's
-- own transaction, so they always describe exactly what is committed.
CREATE TABLE lake.runs (
    run_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain      text NOT NULL REFERENCES lake.domains,
    flow        text,
    flow_run_id text,
    started     timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished    timestamptz,
    status      text NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'complete', 'partial', 'failed')),
    offered     bigint NOT NULL DEFAULT 0,
    inserted    bigint NOT NULL DEFAULT 0,
    changed     bigint NOT NULL DEFAULT 0,
    unchanged   bigint NOT NULL DEFAULT 0,
    deleted     bigint NOT NULL DEFAULT 0,
    rejected    bigint NOT NULL DEFAULT 0,
    error       text
);
CREATE INDEX runs_domain_started ON lake.runs (domain, started DESC);

-- Records refused before they reached raw, with the reason and the start of the record.
CREATE TABLE lake.rejected (
    run_id      bigint NOT NULL,
    reason      text NOT NULL,
    sample      text,
    rejected_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX rejected_run ON lake.rejected (run_id);
