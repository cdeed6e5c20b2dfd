-- Tabular domains: the lake's second shape (DESIGN.md section 8). A tabular domain stores typed
-- columns instead of a JSON document per key, in the same three layers:
--
--   keyed: <d>_raw.<d>    insert-only history, a row per changed or deleted key
--          <d>_xform.<d>  one row per key, the current version
--   facts: <d>_raw.<d>    partitioned by scope (a month), then by version: a load of a scope
--                         writes a new version; an identical one stores nothing
--          <d>_xform.<d>  a view of the current version of every scope
--   both:  <d>_curated.<service>  a view per service: its columns, its rows
--
-- This file holds tables only; the functions that build and load them are in R__tables.sql.

-- A tabular key may be a date, a number, a timestamp: any declared column type. The document
-- domains' key types stay checked where they are declared (Python's Key).
ALTER TABLE lake.domains DROP CONSTRAINT domains_check;
ALTER TABLE lake.domains ADD CONSTRAINT domains_check
    CHECK (cardinality(key_columns) > 0
           AND cardinality(key_types) = cardinality(key_columns)
           AND cardinality(key_fields) = cardinality(key_columns));

-- The shape of each tabular domain; a domain without a row here holds documents.
CREATE TABLE lake.tables (
    domain       text PRIMARY KEY REFERENCES lake.domains ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('keyed', 'facts')),
    -- [{"name": ..., "type": ...}] in table order, key (or scope) columns first; columns the
    -- sources brought later are appended (lake.table_add_columns).
    columns      jsonb NOT NULL CHECK (jsonb_typeof(columns) = 'array'),
    -- facts: the column whose value names a version's unit (a month); it is the domain's key
    scope_column text,
    CHECK ((kind = 'facts') = (scope_column IS NOT NULL))
);
COMMENT ON TABLE lake.tables IS
    'Tabular domains: their kind (keyed rows or facts versioned by scope) and typed columns.';

-- Every load of a facts scope that stored rows. A version becomes the scope's current one when
-- its run finishes as a complete snapshot of the scope, atomically replacing the previous one,
-- which stays in raw as history.
CREATE TABLE lake.table_versions (
    version       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain        text NOT NULL REFERENCES lake.tables ON DELETE CASCADE,
    scope         text NOT NULL,
    run_id        bigint NOT NULL REFERENCES lake.runs,
    content_hash  text NOT NULL,  -- of what the source read (a file's bytes), given by the source
    rows          bigint,         -- NULL until its load committed
    loaded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    current_from  timestamptz,    -- when it became the current version (NULL: not, or not yet)
    current_until timestamptz,    -- when a later version replaced it
    replaced      bigint REFERENCES lake.table_versions  -- the version it replaced
);
CREATE UNIQUE INDEX table_versions_current ON lake.table_versions (domain, scope)
    WHERE current_from IS NOT NULL AND current_until IS NULL;
CREATE INDEX table_versions_run ON lake.table_versions (run_id);

-- The curated services of tabular domains: the columns each may read and the rows (a SQL
-- predicate over the columns, declared with the domain). Each is a view <d>_curated.<service>.
CREATE TABLE lake.table_services (
    domain     text NOT NULL REFERENCES lake.tables ON DELETE CASCADE,
    service    text NOT NULL CHECK (service ~ '^[a-z][a-z0-9_]{0,62}$'),
    columns    text[] NOT NULL CHECK (cardinality(columns) > 0),
    row_filter text,
    PRIMARY KEY (domain, service)
);

-- More of what a run did, beside lake.runs (whose row type SQL-standard functions pin): records
-- a source repeated identically, and changes of a tabular domain's columns.
CREATE TABLE lake.run_details (
    run_id         bigint PRIMARY KEY REFERENCES lake.runs,
    -- records given again, identical, within the run (the same day in two chunks): stored once
    repeated       bigint NOT NULL DEFAULT 0,
    -- columns the run added, or found missing in its source (kept, null)
    schema_changes text[] NOT NULL DEFAULT '{}'
);
