-- Incremental runs: a domain whose source answers what changed since a cursor (a date, an
-- updated_at) rather than a listing. Such a run never deletes, by design, and that is its normal
-- end: status 'incremental', not 'partial' (which says a run that should have seen everything
-- did not). Its cursor, where it stopped, is kept in lake.cursors in the same transaction, so
-- that the cursor moves if and only if the run finished.

ALTER TABLE lake.runs DROP CONSTRAINT runs_status_check;
ALTER TABLE lake.runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('running', 'complete', 'incremental', 'partial', 'guarded', 'failed',
                      'abandoned'));
COMMENT ON COLUMN lake.runs.status IS
    'running; complete (a full snapshot: deletions made); incremental (stored what changed: '
    'deletes nobody, by design); partial (stored what came, deleted nobody); guarded (would have '
    'deleted too many: deleted nobody); failed (stopped by an error: kept what it committed, '
    'deleted nobody); abandoned (its process died: same)';

CREATE TABLE lake.cursors (
    domain     text PRIMARY KEY REFERENCES lake.domains (domain),
    value      text NOT NULL,
    run_id     bigint NOT NULL REFERENCES lake.runs (run_id),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE lake.cursors IS
'Per incremental domain, the cursor its last finished run reached (value is the source''s own '
'notation: a date, a timestamp); the next run continues after it.';

-- Keep a domain's cursor (a full refresh writes it anew after its complete finish).
CREATE FUNCTION lake.save_cursor(run bigint, cursor_value text) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO lake.cursors (domain, value, run_id)
    SELECT domain, cursor_value, run_id FROM lake.runs WHERE run_id = run
    ON CONFLICT (domain) DO UPDATE
    SET value = excluded.value, run_id = excluded.run_id, updated_at = clock_timestamp()
$$;

-- End an incremental run by its writer: it deletes nothing; `cursor_value` (NULL: the cursor
-- stays) is where the next run continues.
CREATE FUNCTION lake.finish_incremental(run bigint, cursor_value text DEFAULT NULL)
RETURNS lake.runs
LANGUAGE plpgsql AS $$
DECLARE
    r lake.runs := lake.writing_run(run);
BEGIN
    EXECUTE format('DELETE FROM lake.%I WHERE run_id = $1', r.domain || '_seen') USING run;
    IF cursor_value IS NOT NULL THEN
        PERFORM lake.save_cursor(run, cursor_value);
    END IF;
    UPDATE lake.runs
    SET status = 'incremental', finished = clock_timestamp(), deleted = 0,
        outcome = lake.describe_outcome(r, 'incremental',
                                        'an incremental run loads what changed and deletes nobody')
    WHERE run_id = run
    RETURNING * INTO r;
    RETURN r;
END
$$;
