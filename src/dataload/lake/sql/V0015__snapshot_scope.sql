-- A complete snapshot may cover only part of a domain: the course flow fetches the active terms
-- only, so a course of another term is not absent from the source, merely not asked for.
-- finish_run takes an optional scope {"key_column": [values...]} that limits deletions to the
-- live keys inside it (each listed column's value among the listed values).
DROP FUNCTION lake.finish_run(bigint, boolean);

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
