-- The write path's server side: what a load run calls, batch by batch.

CREATE FUNCTION lake.start_run(domain_name text, flow text, flow_run_id text) RETURNS lake.runs
LANGUAGE plpgsql AS $$
DECLARE
    run lake.runs;
BEGIN
    PERFORM lake.domain(domain_name);
    -- Keys left behind by runs that ended without finishing (the process died).
    EXECUTE format('DELETE FROM lake.%I AS s WHERE NOT EXISTS
                    (SELECT FROM lake.runs AS r WHERE r.run_id = s.run_id AND r.status = %L)',
                   domain_name || '_seen', 'running');
    INSERT INTO lake.runs (domain, flow, flow_run_id)
    VALUES (domain_name, flow, flow_run_id) RETURNING * INTO run;
    RETURN run;
END
$$;

-- Change detection, step 1. Offer a batch's keys (a JSON array of key arrays, in key-column
-- order) with the md5 of each record's text as sent, keys sorted ("exact" hashes; NULL for a
-- record rejected for its content whose key is valid). Records the keys as seen by the run and
-- returns the positions (1-based) of the records that are not byte-for-byte the current
-- version: is_new when the key is absent or deleted; otherwise the caller compares content
-- hashes (lake.differs), which only costs canonicalising the records whose text differs.
-- One statement: an index probe on xform's primary key per record.
CREATE FUNCTION lake.offer(run bigint, keys jsonb, exact_hashes uuid[])
RETURNS TABLE (ord int, is_new boolean)
LANGUAGE plpgsql AS $$
DECLARE
    d lake.domains := lake.domain((SELECT domain FROM lake.runs WHERE run_id = run));
BEGIN
    RETURN QUERY EXECUTE format($sql$
        WITH offered AS MATERIALIZED (%1$s),
        seen AS (
            INSERT INTO lake.%2$I (run_id, %3$s) SELECT $3, %3$s FROM offered)
        SELECT o.ord, (x.%4$I IS NULL OR x.deleted_at IS NOT NULL)
        FROM offered AS o
        LEFT JOIN %5$I.%6$I AS x ON %7$s
        WHERE o.hash IS NOT NULL
          AND (x.%4$I IS NULL OR x.deleted_at IS NOT NULL
               OR x.exact_hash IS DISTINCT FROM o.hash)
        ORDER BY o.ord
        $sql$,
        lake.offered_rows(d), d.domain || '_seen', lake.key_list(d.key_columns),
        d.key_columns[1], d.domain || '_xform', 'current_' || d.domain || '_data',
        lake.key_match(d.key_columns, 'x', 'o'))
    USING keys, exact_hashes, run;
END
$$;

-- Change detection, step 2: the positions of the records whose content hash (md5 of the
-- canonical JSON) differs from the current version's.
CREATE FUNCTION lake.differs(run bigint, keys jsonb, content_hashes uuid[])
RETURNS SETOF int
LANGUAGE plpgsql AS $$
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

-- "SELECT ord, <key columns>, hash FROM ($1 keys, $2 hashes)" for a domain: the query
-- lake.offer and lake.differs read a batch from.
CREATE FUNCTION lake.offered_rows(d lake.domains) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN format(
    'SELECT o.ord::int AS ord, %s, o.hash
     FROM ROWS FROM (jsonb_array_elements($1), unnest($2)) WITH ORDINALITY AS o(key, hash, ord)',
    (SELECT string_agg(format('(o.key ->> %s)::%s AS %I', n - 1, t, c), ', ' ORDER BY n)
     FROM unnest(d.key_columns, d.key_types) WITH ORDINALITY AS s(c, t, n)));

-- Add a batch's counts to its run, and keep its rejected records (a JSON array of
-- {"reason": ..., "sample": ...}). Called last in the batch's own transaction, so the ledger
-- counts exactly what is committed; a run that is no longer running refuses the batch.
CREATE FUNCTION lake.record_batch(
    run bigint, offered bigint, inserted bigint, changed bigint, unchanged bigint,
    rejected bigint, rejects jsonb
) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM lake.running_run(run);
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

CREATE FUNCTION lake.running_run(run bigint) RETURNS lake.runs
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

-- End a run. A complete snapshot marks every live key the run did not offer as deleted (a raw
-- row with deleted true, which the raw trigger propagates); a partial run deletes nothing.
-- A complete snapshot may cover only part of a domain: the course flow fetches the active terms
-- only, so a course of another term is not absent from the source, merely not asked for. The
-- optional scope {"key_column": [values...]} limits deletions to the live keys inside it (each
-- listed column's value among the listed values).
CREATE FUNCTION lake.finish_run(run bigint, complete boolean, scope jsonb DEFAULT NULL)
RETURNS lake.runs
LANGUAGE plpgsql AS $$
DECLARE
    r lake.runs := lake.running_run(run);
    d lake.domains := lake.domain(r.domain);
    k text := lake.key_list(d.key_columns);
    within text := '';
    col text;
    removed bigint := 0;
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
    IF complete THEN
        EXECUTE format($sql$
            INSERT INTO %1$I_raw.%2$I (%3$s, %2$I, deleted, run_id)
            SELECT %4$s, NULL, true, $1
            FROM %1$I_xform.%5$I AS x
            WHERE x.deleted_at IS NULL %8$s
              AND NOT EXISTS (SELECT FROM lake.%6$I AS s WHERE s.run_id = $1 AND %7$s)
            ORDER BY %4$s
            $sql$,
            d.domain, d.domain || '_data', k, lake.key_list(d.key_columns, 'x'),
            'current_' || d.domain || '_data', d.domain || '_seen',
            lake.key_match(d.key_columns, 's', 'x'), within)
        USING run, scope;
        GET DIAGNOSTICS removed = ROW_COUNT;
    END IF;
    EXECUTE format('DELETE FROM lake.%I WHERE run_id = $1', d.domain || '_seen') USING run;
    UPDATE lake.runs
    SET status = CASE WHEN complete THEN 'complete' ELSE 'partial' END,
        finished = clock_timestamp(), deleted = removed
    WHERE run_id = run
    RETURNING * INTO r;
    RETURN r;
END
$$;

CREATE FUNCTION lake.fail_run(run bigint, reason text) RETURNS lake.runs
LANGUAGE plpgsql AS $$
DECLARE
    r lake.runs := lake.running_run(run);
BEGIN
    EXECUTE format('DELETE FROM lake.%I WHERE run_id = $1', r.domain || '_seen') USING run;
    UPDATE lake.runs SET status = 'failed', finished = clock_timestamp(), error = reason
    WHERE run_id = run
    RETURNING * INTO r;
    RETURN r;
END
$$;

-- What each layer of a domain holds: {"raw", "xform_live", "xform_deleted", "curated": {...}}.
CREATE FUNCTION lake.layer_counts(domain_name text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    d lake.domains := lake.domain(domain_name);
    raw bigint;
    live bigint;
    gone bigint;
    curated jsonb;
BEGIN
    EXECUTE format('SELECT count(*) FROM %I.%I', d.domain || '_raw', d.domain || '_data')
        INTO raw;
    EXECUTE format('SELECT count(*) FILTER (WHERE deleted_at IS NULL),
                           count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM %I.%I',
                   d.domain || '_xform', 'current_' || d.domain || '_data')
        INTO live, gone;
    EXECUTE format('SELECT coalesce(jsonb_object_agg(service, n), %L)
                    FROM (SELECT service, count(*) AS n FROM %I.%I GROUP BY service) AS s',
                   '{}', d.domain || '_curated', d.domain || '_data_by_service')
        INTO curated;
    RETURN jsonb_build_object('raw', raw, 'xform_live', live, 'xform_deleted', gone,
                              'curated', curated);
END
$$;
