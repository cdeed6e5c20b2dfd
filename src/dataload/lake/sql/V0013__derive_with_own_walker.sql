-- Re-deriving one service walks every current record: with a walker of that service alone
-- (in the session's pg_temp, like lake.filter_record) rather than the domain's walker of all
-- services, a services sync that changes k services walks k times one service, not k times
-- all of them. The paths come from the filters table, as the service now stands; a service
-- that no longer exists loses all its rows.
CREATE OR REPLACE FUNCTION lake.derive_service(domain_name text, service_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d        lake.domains := lake.domain(domain_name);
    k        text := lake.key_list(d.key_columns);
    compiled jsonb;
    walker   text;
BEGIN
    EXECUTE format('SELECT compiled FROM %I.%I WHERE service = $1',
                   d.domain || '_curated', d.domain || '_schema_service_filters')
        INTO compiled USING service_name;
    IF compiled IS NULL THEN
        EXECUTE format('DELETE FROM %I.%I WHERE service = $1',
                       d.domain || '_curated', d.domain || '_data_by_service')
            USING service_name;
        RETURN;
    END IF;
    walker := format('pg_temp.%I', lake.ensure_walker('pg_temp', ARRAY[compiled], d.key_fields));
    EXECUTE format($sql$
        WITH walked AS MATERIALIZED (
            SELECT %2$s, %8$s(x.%3$I || '{}') AS kept
            FROM %1$I_xform.%4$I AS x
            WHERE x.deleted_at IS NULL),
        derived AS MATERIALIZED (
            SELECT %6$s, CASE WHEN kept[2] IS NOT NULL THEN kept[1]::jsonb END AS data
            FROM walked),
        upserted AS (
            INSERT INTO %1$I_curated.%5$I AS c (service, %6$s, %3$I, modified_date)
            SELECT $1, %6$s, data, now() FROM derived WHERE data IS NOT NULL ORDER BY %6$s
            ON CONFLICT (service, %6$s) DO UPDATE
            SET %3$I = excluded.%3$I, modified_date = excluded.modified_date
            WHERE c.%3$I IS DISTINCT FROM excluded.%3$I)
        DELETE FROM %1$I_curated.%5$I AS c
        WHERE c.service = $1
          AND NOT EXISTS (SELECT FROM derived WHERE derived.data IS NOT NULL AND %7$s)
        $sql$,
        d.domain, lake.key_list(d.key_columns, 'x'), d.domain || '_data',
        'current_' || d.domain || '_data', d.domain || '_data_by_service', k,
        lake.key_match(d.key_columns, 'c', 'derived'), walker)
    USING service_name;
END
$$;
