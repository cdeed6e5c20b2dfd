-- The versions of one key of a domain, oldest first, from <d>_raw.<d>_history.
-- key: a JSON array of the key values in key-column order, e.g. ["U12345678"].
CREATE FUNCTION lake.history(domain_name text, key jsonb)
RETURNS TABLE (raw_id bigint, data jsonb, deleted boolean, run_id bigint,
               valid_from timestamptz, valid_to timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    d lake.domains := lake.domain(domain_name);
    condition text := (SELECT string_agg(format('h.%I = ($1 ->> %s)::%s', c, n - 1, t), ' AND '
                                         ORDER BY n)
                       FROM unnest(d.key_columns, d.key_types) WITH ORDINALITY AS s(c, t, n));
BEGIN
    IF jsonb_typeof(key) <> 'array' OR jsonb_array_length(key) <> cardinality(d.key_columns) THEN
        RAISE EXCEPTION 'a % key has % values (%), got %', d.domain,
            cardinality(d.key_columns), array_to_string(d.key_columns, ', '), key
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT h.raw_id, h.%3$I, h.deleted, h.run_id, h.valid_from, h.valid_to
         FROM %1$I.%2$I AS h WHERE %4$s ORDER BY h.raw_id',
        d.domain || '_raw', d.domain || '_history', d.domain || '_data', condition)
    USING key;
END
$$;
