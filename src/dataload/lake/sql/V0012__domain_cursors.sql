-- Where an incremental domain's last successful run stopped (a date, an updated_at, ...), so
-- that the next run asks its source only for what came after. Written when a run finishes,
-- never by a failed one; a full refresh ignores it and writes it anew.

CREATE TABLE lake.cursors (
    domain     text PRIMARY KEY REFERENCES lake.domains (domain),
    value      text NOT NULL,
    run_id     bigint NOT NULL REFERENCES lake.runs (run_id),
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE lake.cursors IS
'Per incremental domain, the cursor its last finished run reached (value is the source''s own '
'notation: a date, a timestamp); the next run continues after it.';
