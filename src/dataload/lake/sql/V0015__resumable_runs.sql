-- Resumable runs: a run that failed or was killed keeps the keys it saw (its listing and what
-- its committed batches loaded), so that the next run may resume it instead of starting over. A
-- resumed run adopts those keys: what was loaded is not asked for again, and its listing is the
-- union of both listings, so its finish deletes by the same rules as one uninterrupted run.
-- Resuming is only offered while the work kept is fresh: within `fresh_for` of the moment the
-- first run of the chain started; after that a run starts from nothing.
--
-- A run may also be loaded by several processes (shards): each reads its share of the keys
-- still to load (lake.pending_keys) and writes batches into the same run, while the process that
-- started the run keeps its writer lock and alone finishes it.

-- lake.describe_outcome (V0012) is a SQL-standard function of the runs row type, which pins
-- it: dropped to add the columns, then created again as it was.
DROP FUNCTION lake.describe_outcome(lake.runs, text, text, bigint);
ALTER TABLE lake.runs
    ADD COLUMN resumed_from bigint REFERENCES lake.runs (run_id),
    ADD COLUMN fresh_since  timestamptz,  -- when the oldest work it adopted began (or NULL)
    ADD COLUMN carried      bigint NOT NULL DEFAULT 0;  -- keys loaded by the run it resumed
COMMENT ON COLUMN lake.runs.resumed_from IS
    'the failed or abandoned run whose listing and loaded keys this run adopted';
CREATE FUNCTION lake.describe_outcome(r lake.runs, status text, why text, deleted bigint DEFAULT 0)
RETURNS text
LANGUAGE sql IMMUTABLE
RETURN format('stored %s new and %s changed records%s, %s',
              r.inserted, r.changed,
              CASE status WHEN 'failed' THEN ' before it failed'
                          WHEN 'abandoned' THEN ' before it stopped' ELSE '' END,
              CASE WHEN deleted > 0 THEN format('deleted %s', deleted)
                   ELSE 'deleted nobody' END)
       || CASE WHEN why IS NULL THEN '' ELSE ': ' || why END;

DROP FUNCTION lake.start_run(text, text, text);

-- Start a run (see V0012) holding the domain's writer lock. With `resume`, the latest run of the
-- domain, when it failed or was abandoned within `fresh_for`, is resumed: its seen keys become
-- this run's. Otherwise, and always without `resume`, the run starts from nothing.
CREATE FUNCTION lake.start_run(
    domain_name text, flow text, flow_run_id text,
    resume boolean DEFAULT false, fresh_for interval DEFAULT '24 hours'
) RETURNS lake.runs
LANGUAGE plpgsql AS $$
DECLARE
    run lake.runs;
    busy lake.runs;
    prior lake.runs;
    seen text := domain_name || '_seen';
    adopted bigint := 0;
BEGIN
    PERFORM lake.domain(domain_name);
    IF NOT pg_try_advisory_lock(lake.writer_lock_key(domain_name)) THEN
        SELECT * INTO busy FROM lake.runs
        WHERE domain = domain_name AND status = 'running' ORDER BY run_id DESC LIMIT 1;
        RAISE EXCEPTION '% run % is loading (started %, flow run %): one writer per domain',
            domain_name, coalesce(busy.run_id::text, '?'),
            coalesce(to_char(busy.started, 'YYYY-MM-DD HH24:MI:SS TZ'), '?'),
            coalesce(busy.flow_run_id, 'none')
            USING ERRCODE = 'lock_not_available',
                  HINT = 'wait for it to end, or stop it; a run whose process died frees its lock';
    END IF;
    UPDATE lake.runs
    SET status = 'abandoned', finished = clock_timestamp(),
        outcome = lake.describe_outcome(runs, 'abandoned', 'its process died or lost its database session')
    WHERE domain = domain_name AND status = 'running';
    IF resume THEN
        SELECT * INTO prior FROM lake.runs WHERE domain = domain_name ORDER BY run_id DESC LIMIT 1;
        IF NOT (prior.status IN ('failed', 'abandoned')
                AND coalesce(prior.fresh_since, prior.started) >= clock_timestamp() - fresh_for) THEN
            prior := NULL;
        END IF;
    END IF;
    INSERT INTO lake.runs (domain, flow, flow_run_id, writer_pid, server_started,
                           resumed_from, fresh_since)
    VALUES (domain_name, flow, flow_run_id, pg_backend_pid(), pg_postmaster_start_time(),
            prior.run_id, coalesce(prior.fresh_since, prior.started))
    RETURNING * INTO run;
    IF prior.run_id IS NULL THEN
        EXECUTE format('TRUNCATE lake.%I', seen);
    ELSE
        EXECUTE format('DELETE FROM lake.%I WHERE run_id <> $1', seen) USING prior.run_id;
        EXECUTE format('UPDATE lake.%I SET run_id = $1 WHERE run_id = $2', seen)
            USING run.run_id, prior.run_id;
        EXECUTE format('SELECT count(*) FROM lake.%I WHERE run_id = $1 AND NOT listed', seen)
            INTO adopted USING run.run_id;
        UPDATE lake.runs SET carried = adopted, listed = prior.listed
        WHERE run_id = run.run_id
        RETURNING * INTO run;
    END IF;
    RETURN run;
END
$$;

-- A failed run keeps its seen keys: the next run may resume it (lake.start_run drops them
-- otherwise).
CREATE OR REPLACE FUNCTION lake.fail_run(run bigint, reason text) RETURNS lake.runs
LANGUAGE plpgsql AS $$
DECLARE
    r lake.runs := lake.running_run(run);
BEGIN
    UPDATE lake.runs
    SET status = 'failed', finished = clock_timestamp(), error = reason,
        outcome = lake.describe_outcome(r, 'failed', reason)
    WHERE run_id = run
    RETURNING * INTO r;
    RETURN r;
END
$$;

-- The keys a running run listed and has not loaded yet, as JSON arrays in key-column order,
-- sorted; with `shards` > 1 only those of shard `shard` (0-based): keys are split by a hash
-- of their text, so that the shards' shares are disjoint and together the whole.
CREATE FUNCTION lake.pending_keys(run bigint, shard integer DEFAULT 0, shards integer DEFAULT 1)
RETURNS SETOF jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r lake.runs;
    d lake.domains;
    k text;
BEGIN
    SELECT * INTO r FROM lake.runs WHERE run_id = run;
    IF r.status IS DISTINCT FROM 'running' THEN
        RAISE EXCEPTION 'run % is %, not running', run, coalesce(r.status, 'unknown')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF shards < 1 OR shard < 0 OR shard >= shards THEN
        RAISE EXCEPTION 'shard % of % does not exist (shards are numbered from 0)', shard, shards
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    d := lake.domain(r.domain);
    k := lake.key_list(d.key_columns);
    RETURN QUERY EXECUTE format($sql$
        SELECT jsonb_build_array(%1$s)
        FROM (SELECT %1$s FROM lake.%2$I WHERE run_id = $1 AND listed
              EXCEPT
              SELECT %1$s FROM lake.%2$I WHERE run_id = $1 AND NOT listed) AS p
        WHERE mod(mod(hashtextextended(concat_ws('/', %1$s), 0), $3) + $3, $3) = $2
        ORDER BY %1$s
        $sql$, k, d.domain || '_seen')
    USING run, shard, shards;
END
$$;

-- Declare keys of the run's listing (see V0012). A resumed run's listing is the union of its
-- own and the one it adopted: keys already listed are not declared twice.
CREATE OR REPLACE FUNCTION lake.list_keys(run bigint, keys jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    r lake.runs := lake.writing_run(run);
    d lake.domains := lake.domain(r.domain);
    k text := lake.key_list(d.key_columns);
    known text := '';
    n bigint;
BEGIN
    IF r.resumed_from IS NOT NULL THEN
        known := format('EXCEPT SELECT %s FROM lake.%I WHERE run_id = $3 AND listed',
                        k, d.domain || '_seen');
    END IF;
    EXECUTE format('INSERT INTO lake.%1$I (run_id, listed, %2$s)
                    SELECT $3, true, %2$s FROM (SELECT %3$s FROM (%4$s) AS o %5$s) AS n',
                   d.domain || '_seen', k, lake.key_list(d.key_columns, 'o'),
                   lake.offered_rows(d), known)
    USING keys, NULL::uuid[], run;
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE lake.runs SET listed = coalesce(listed, 0) + n WHERE run_id = run;
    RETURN n;
END
$$;
