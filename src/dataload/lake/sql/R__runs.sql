-- Repeatable script (lake/migrate.py): the one current definition of each function below,
-- re-applied whenever this file changes. To change a function, edit its body here; tables,
-- columns and data go in a new versioned migration (V####__what.sql).
--
-- The write path's server side: what a load run calls, from its start to its end, batch by
-- batch. Each function the loader calls runs with the owner's rights (SECURITY DEFINER, its
-- search_path pinned; R__roles.sql): the loader writes the ledger only through them. The rules a run follows (one writer per domain, deletions only on positive evidence
-- of absence, resumable runs, shards) are described at the top of V0012, V0014 and V0015.

-- "SELECT ord, <key columns>, hash FROM ($1 keys, $2 hashes)" for a domain: the query
-- lake.offer, lake.differs and lake.list_keys read a batch from.
-- A SQL-standard body (RETURN ...) of the lake.domains row type, which pins it: a versioned
-- migration that changes the columns of lake.domains drops this function first and deletes the
-- row 'runs' of lake.repeatable_scripts, so that this script creates it again.
CREATE OR REPLACE FUNCTION lake.offered_rows(d lake.domains) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN format(
    'SELECT o.ord::int AS ord, %s, o.hash
     FROM ROWS FROM (jsonb_array_elements($1), unnest($2)) WITH ORDINALITY AS o(key, hash, ord)',
    (SELECT string_agg(format('(o.key ->> %s)::%s AS %I', n - 1, t, c), ', ' ORDER BY n)
     FROM unnest(d.key_columns, d.key_types) WITH ORDINALITY AS s(c, t, n)));

-- "stored 3 new and 5 changed records, deleted nobody: <why>" for a run's counts.
-- A SQL-standard body (RETURN ...) of the lake.runs row type, which pins it: a versioned
-- migration that changes the columns of lake.runs drops this function first and deletes the
-- row 'runs' of lake.repeatable_scripts, so that this script creates it again.
CREATE OR REPLACE FUNCTION lake.describe_outcome(r lake.runs, status text, why text, deleted bigint DEFAULT 0)
RETURNS text
LANGUAGE sql IMMUTABLE
RETURN format('stored %s new and %s changed records%s, %s',
              r.inserted, r.changed,
              CASE status WHEN 'failed' THEN ' before it failed'
                          WHEN 'abandoned' THEN ' before it stopped' ELSE '' END,
              CASE WHEN deleted > 0 THEN format('deleted %s', deleted)
                   ELSE 'deleted nobody' END)
       || CASE WHEN why IS NULL THEN '' ELSE ': ' || why END;

-- The run, locked, if it is running; else an error.
CREATE OR REPLACE FUNCTION lake.running_run(run bigint) RETURNS lake.runs
LANGUAGE plpgsql AS $$
DECLARE
    result lake.runs;
BEGIN
    SELECT * INTO result FROM lake.runs WHERE run_id = run FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % does not exist', run USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF result.status <> 'running' THEN
        RAISE EXCEPTION 'run % is already %', run, result.status
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN result;
END
$$;

-- Start a run on the connection that will hold the domain's writer lock for the run's life.
-- Refused at once when another session holds it (the caller waits and asks again). Runs still
-- 'running' then have no writer left: their process died; they are marked abandoned. With
-- `resume`, the latest run of the domain, when it failed or was abandoned within `fresh_for`,
-- is resumed: its seen keys become this run's. Otherwise, and always without `resume`, the run
-- starts from nothing.
CREATE OR REPLACE FUNCTION lake.start_run(
    domain_name text, flow text, flow_run_id text,
    resume boolean DEFAULT false, fresh_for interval DEFAULT '24 hours'
) RETURNS lake.runs
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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

-- Declare keys of the run's complete listing (a JSON array of key arrays, in key-column order),
-- apart from the records it loads: a listed key the run never loads is missing, not deleted.
-- A resumed run's listing is the union of its own and the one it adopted: keys already listed
-- are not declared twice.
CREATE OR REPLACE FUNCTION lake.list_keys(run bigint, keys jsonb) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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

-- The keys a running run listed and has not loaded yet, as JSON arrays in key-column order,
-- sorted; with `shards` > 1 only those of shard `shard` (0-based): keys are split by a hash
-- of their text, so that the shards' shares are disjoint and together the whole.
CREATE OR REPLACE FUNCTION lake.pending_keys(run bigint, shard integer DEFAULT 0, shards integer DEFAULT 1)
RETURNS SETOF jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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

-- Change detection, step 1. Offer a batch's keys (a JSON array of key arrays, in key-column
-- order) with the md5 of each record's text as sent, keys sorted ("exact" hashes; NULL for a
-- record rejected for its content whose key is valid). Records the keys as seen by the run and
-- returns the positions (1-based) of the records that are not byte-for-byte the current
-- version: is_new when the key is absent or deleted; otherwise its text changed, the caller
-- sends it and raw's row trigger decides whether its content did (lake.stored says).
-- `again` marks a key an earlier batch of the run offered already: the same record again is a
-- repeat (stored once), another one a conflict (rejected). One statement: an index probe on
-- xform's primary key, and one on the seen keys, per record.
CREATE OR REPLACE FUNCTION lake.offer(run bigint, keys jsonb, exact_hashes uuid[])
RETURNS TABLE (ord int, is_new boolean, again boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d lake.domains := lake.domain((SELECT domain FROM lake.runs WHERE run_id = run));
BEGIN
    RETURN QUERY EXECUTE format($sql$
        WITH offered AS MATERIALIZED (%1$s),
        seen AS (
            INSERT INTO lake.%2$I (run_id, %3$s) SELECT $3, %3$s FROM offered),
        judged AS (
            SELECT o.ord, o.hash, x.exact_hash, (x.%4$I IS NULL OR x.deleted_at IS NOT NULL) AS is_new,
                   EXISTS (SELECT FROM lake.%2$I AS s WHERE s.run_id = $3 AND NOT s.listed AND %8$s)
                       AS again
            FROM offered AS o
            LEFT JOIN %5$I.%6$I AS x ON %7$s
            WHERE o.hash IS NOT NULL)
        SELECT ord, is_new, again FROM judged
        WHERE is_new OR again OR exact_hash IS DISTINCT FROM hash
        ORDER BY ord
        $sql$,
        lake.offered_rows(d), d.domain || '_seen', lake.key_list(d.key_columns),
        d.key_columns[1], d.domain || '_xform', 'current_' || d.domain || '_data',
        lake.key_match(d.key_columns, 'x', 'o'), lake.key_match(d.key_columns, 's', 'o'))
    USING keys, exact_hashes, run;
END
$$;

-- Change detection, for keys an earlier batch of the run stored: the positions of the records
-- whose content hash (md5 of the canonical JSON) differs from the current version's, the one
-- the run stored (a conflict; the others are repeats). Read-only: what raw keeps, its trigger
-- decides.
CREATE OR REPLACE FUNCTION lake.differs(run bigint, keys jsonb, content_hashes uuid[])
RETURNS SETOF int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d lake.domains := lake.domain((SELECT domain FROM lake.runs WHERE run_id = run));
BEGIN
    RETURN QUERY EXECUTE format($sql$
        WITH offered AS MATERIALIZED (%1$s)
        SELECT o.ord
        FROM offered AS o
        LEFT JOIN %2$I.%3$I AS x ON %4$s
        WHERE x.content_hash IS DISTINCT FROM o.hash OR x.deleted_at IS NOT NULL
        ORDER BY o.ord
        $sql$,
        lake.offered_rows(d), d.domain || '_xform', 'current_' || d.domain || '_data',
        lake.key_match(d.key_columns, 'x', 'o'))
    USING keys, content_hashes;
END
$$;

-- Change detection, step 3: which of the records a batch sent raw kept (the others raw's row
-- trigger found equal to their current version): the positions of the keys with a raw row of
-- this run. A key an earlier batch of the run stored is not sent again (lake.offer says
-- `again`), so such a row is this batch's.
CREATE OR REPLACE FUNCTION lake.stored(run bigint, keys jsonb) RETURNS SETOF int
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d lake.domains := lake.domain((SELECT domain FROM lake.runs WHERE run_id = run));
BEGIN
    RETURN QUERY EXECUTE format($sql$
        WITH offered AS MATERIALIZED (%1$s)
        SELECT o.ord FROM offered AS o
        WHERE EXISTS (SELECT FROM %2$I.%3$I AS r WHERE %4$s AND r.run_id = $3 AND NOT r.deleted)
        ORDER BY o.ord
        $sql$,
        lake.offered_rows(d), d.domain || '_raw', d.domain || '_data',
        lake.key_match(d.key_columns, 'r', 'o'))
    USING keys, NULL::uuid[], run;
END
$$;

-- Add a batch's counts to its run, and keep its rejected records (a JSON array of
-- {"reason": ..., "sample": ...}). Called last in the batch's own transaction, so the ledger
-- counts exactly what is committed; a run that is no longer its writer's refuses the batch.
CREATE OR REPLACE FUNCTION lake.record_batch(
    run bigint, offered bigint, inserted bigint, changed bigint, unchanged bigint,
    rejected bigint, rejects jsonb
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM lake.writing_run(run);
    UPDATE lake.runs
    SET offered = runs.offered + record_batch.offered,
        inserted = runs.inserted + record_batch.inserted,
        changed = runs.changed + record_batch.changed,
        unchanged = runs.unchanged + record_batch.unchanged,
        rejected = runs.rejected + record_batch.rejected
    WHERE run_id = run;
    INSERT INTO lake.rejected (run_id, reason, sample)
    SELECT run, r ->> 'reason', r ->> 'sample' FROM jsonb_array_elements(rejects) AS r;
END
$$;

-- lake.record_batch, plus the records the batch repeated (kept in lake.run_details).
CREATE OR REPLACE FUNCTION lake.record_counts(
    run bigint, offered bigint, inserted bigint, changed bigint, unchanged bigint,
    repeated bigint, rejected bigint, rejects jsonb
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM lake.record_batch(run, offered, inserted, changed, unchanged, rejected, rejects);
    IF repeated > 0 THEN
        INSERT INTO lake.run_details AS x (run_id, repeated) VALUES (run, record_counts.repeated)
        ON CONFLICT (run_id) DO UPDATE SET repeated = x.repeated + excluded.repeated;
    END IF;
END
$$;

-- End a run. Only a complete snapshot deletes, and only keys of its scope that it neither
-- loaded nor listed; a run that listed keys it never loaded ends partial and deletes nobody, and
-- one that would delete more than max_delete_share of the live keys of its scope ends guarded
-- and deletes nobody (NULL: no guard). `incomplete` says why a run is not a complete snapshot
-- (complete is false). The scope {"key_column": [values...]} limits deletions to the live keys
-- inside it: the course flow fetches the active terms only, so a course of another term is not
-- absent from the source, merely not asked for. The same for documents and keyed tables.
CREATE OR REPLACE FUNCTION lake.finish_run(
    run bigint, complete boolean, scope jsonb DEFAULT NULL,
    max_delete_share numeric DEFAULT NULL, incomplete text DEFAULT NULL
) RETURNS lake.runs
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r lake.runs := lake.writing_run(run);
    d lake.domains := lake.domain(r.domain);
    k text := lake.key_list(d.key_columns);
    seen text := d.domain || '_seen';
    xform text := lake.xform_table(d.domain);
    within text := '';
    unseen text;
    col text;
    lost bigint := 0;
    sample text[];
    live bigint;
    doomed bigint;
    removed bigint := 0;
    outcome_status text;
    why text;
BEGIN
    IF complete AND scope IS NOT NULL THEN
        IF jsonb_typeof(scope) <> 'object' THEN
            RAISE EXCEPTION 'a snapshot scope must be an object of key column -> values'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR col IN SELECT jsonb_object_keys(scope) LOOP
            IF NOT col = ANY (d.key_columns) OR jsonb_typeof(scope -> col) <> 'array' THEN
                RAISE EXCEPTION 'snapshot scope: "%" is not a key column of %, with a list of values',
                    col, d.domain
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = format('key columns: %s', array_to_string(d.key_columns, ', '));
            END IF;
            within := within || format(
                ' AND x.%1$I::text IN (SELECT jsonb_array_elements_text($2 -> %2$L))', col, col);
        END LOOP;
    END IF;
    IF r.listed IS NOT NULL THEN
        EXECUTE format($sql$
            SELECT count(*), (array_agg(concat_ws('/', %1$s) ORDER BY %1$s))[1:10]
            FROM (SELECT %1$s FROM lake.%2$I WHERE run_id = $1 AND listed
                  EXCEPT
                  SELECT %1$s FROM lake.%2$I WHERE run_id = $1 AND NOT listed) AS m
            $sql$, k, seen)
        INTO lost, sample USING run;
    END IF;
    -- Live keys of the scope the run neither loaded nor listed.
    unseen := format('FROM %1$s AS x WHERE x.deleted_at IS NULL %2$s
                      AND NOT EXISTS (SELECT FROM lake.%3$I AS s WHERE s.run_id = $1 AND %4$s)',
                     xform, within, seen, lake.key_match(d.key_columns, 's', 'x'));
    IF NOT complete THEN
        outcome_status := 'partial';
        why := coalesce(incomplete, 'the run did not see a complete listing');
    ELSIF lost > 0 THEN
        outcome_status := 'partial';
        why := format('%s listed keys were not loaded (%s%s)', lost,
                      array_to_string(sample, ', '), CASE WHEN lost > 10 THEN ', ...' ELSE '' END);
    ELSE
        EXECUTE format('SELECT count(*) FROM %s AS x WHERE x.deleted_at IS NULL %s', xform, within)
            INTO live USING run, scope;
        EXECUTE 'SELECT count(*) ' || unseen INTO doomed USING run, scope;
        IF max_delete_share IS NOT NULL AND doomed > max_delete_share * live THEN
            outcome_status := 'guarded';
            why := format('it would have deleted %s of %s live records (%s%%), more than the '
                          '%s%% guard; if they really left, run again allowing a mass deletion',
                          doomed, live, round(100.0 * doomed / live, 1),
                          round(100 * max_delete_share, 1));
        ELSE
            outcome_status := 'complete';
            EXECUTE format('INSERT INTO %1$s (%2$s, deleted, run_id)
                            SELECT %3$s, true, $1 %4$s ORDER BY %3$s',
                           lake.raw_table(d.domain), k, lake.key_list(d.key_columns, 'x'), unseen)
                USING run, scope;
            GET DIAGNOSTICS removed = ROW_COUNT;
        END IF;
    END IF;
    EXECUTE format('DELETE FROM lake.%I WHERE run_id = $1', seen) USING run;
    UPDATE lake.runs
    SET status = outcome_status, finished = clock_timestamp(), deleted = removed,
        missing = lost, missing_sample = sample,
        outcome = lake.describe_outcome(r, outcome_status, why, removed)
    WHERE run_id = run
    RETURNING * INTO r;
    RETURN r;
END
$$;

-- End a run that failed. It keeps its seen keys: the next run may resume it (lake.start_run
-- drops them otherwise).
CREATE OR REPLACE FUNCTION lake.fail_run(run bigint, reason text) RETURNS lake.runs
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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

-- Keep a domain's cursor (a full refresh writes it anew after its complete finish).
CREATE OR REPLACE FUNCTION lake.save_cursor(run bigint, cursor_value text) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO lake.cursors (domain, value, run_id)
    SELECT domain, cursor_value, run_id FROM lake.runs WHERE run_id = run
    ON CONFLICT (domain) DO UPDATE
    SET value = excluded.value, run_id = excluded.run_id, updated_at = clock_timestamp()
$$;

-- End an incremental run by its writer: it deletes nothing; `cursor_value` (NULL: the cursor
-- stays) is where the next run continues.
CREATE OR REPLACE FUNCTION lake.finish_incremental(run bigint, cursor_value text DEFAULT NULL)
RETURNS lake.runs
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
