-- Repeatable script (lake/migrate.py): the one current definition of each function below,
-- re-applied whenever this file changes. To change a function, edit its body here; tables,
-- columns and data go in a new versioned migration (V####__what.sql).
--
-- A domain's services: the triggers of its filters table (<d>_curated.<d>_schema_service_filters)
-- that validate the paths and re-derive what changed, and the functions that read and sync
-- the filters. The paths are compiled and walked by the functions of R__walkers.sql.

-- BEFORE INSERT OR UPDATE on a filters table: validate and compile the paths.
CREATE OR REPLACE FUNCTION lake.filter_compile() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.compiled := lake.compile_paths(NEW.service, NEW.paths);
    NEW.modified_date := now();
    RETURN NEW;
END
$$;

-- AFTER INSERT, UPDATE or DELETE on a filters table (TG_ARGV[0] = domain): compile the
-- domain's walker anew, then re-derive what changed, and only that.
CREATE OR REPLACE FUNCTION lake.filter_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM lake.compile_walker(TG_ARGV[0]);
    IF TG_OP IN ('UPDATE', 'DELETE') AND (TG_OP = 'DELETE' OR OLD.service <> NEW.service) THEN
        PERFORM lake.derive_service(TG_ARGV[0], OLD.service);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND (OLD.paths IS DISTINCT FROM NEW.paths
                                                  OR OLD.service <> NEW.service)) THEN
        PERFORM lake.derive_service(TG_ARGV[0], NEW.service);
    END IF;
    RETURN NULL;
END
$$;

-- Re-derive one service of a domain for every current record, set-based: rows whose filtered
-- copy changed are rewritten, rows that no longer hold anything are removed. This walks every
-- current record: with a walker of that service alone (in the session's pg_temp, like
-- lake.filter_record) rather than the domain's walker of all services, a services sync that
-- changes k services walks k times one service, not k times all of them. The paths come from
-- the filters table, as the service now stands; a service that no longer exists loses all its
-- rows. No JIT, for the reason given at lake.raw_propagate.
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
$$
SET jit = off;

-- Make a domain's service filters equal to a given set ({"service": ["/path", ...], ...}):
-- new services are added, services whose paths differ are updated, the others are removed.
-- The filters' triggers validate the paths and re-derive exactly the services that changed.
-- Returns one row per service with what happened to it.
CREATE OR REPLACE FUNCTION lake.sync_services(domain_name text, services jsonb)
RETURNS TABLE (service text, action text)
LANGUAGE plpgsql AS $$
DECLARE
    d lake.domains := lake.domain(domain_name);
    filters text := format('%I.%I', d.domain || '_curated', d.domain || '_schema_service_filters');
    wanted record;
    current text[];
BEGIN
    IF jsonb_typeof(services) <> 'object' THEN
        RAISE EXCEPTION 'services of % must be a JSON object of service -> paths', d.domain
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR wanted IN SELECT s.key AS name, s.value AS paths FROM jsonb_each(services) AS s
                  ORDER BY s.key LOOP
        IF jsonb_typeof(wanted.paths) <> 'array' OR EXISTS (
                SELECT FROM jsonb_array_elements(wanted.paths) AS p
                WHERE jsonb_typeof(p) <> 'string') THEN
            RAISE EXCEPTION 'service "%" of %: paths must be a list of strings', wanted.name,
                d.domain USING ERRCODE = 'invalid_parameter_value';
        END IF;
        EXECUTE format('SELECT paths FROM %s WHERE service = $1', filters)
            INTO current USING wanted.name;
        service := wanted.name;
        IF current IS NULL THEN
            EXECUTE format('INSERT INTO %s (service, paths) VALUES ($1, $2)', filters)
                USING wanted.name, ARRAY(SELECT jsonb_array_elements_text(wanted.paths));
            action := 'added';
        ELSIF current IS DISTINCT FROM ARRAY(SELECT jsonb_array_elements_text(wanted.paths)) THEN
            EXECUTE format('UPDATE %s SET paths = $2 WHERE service = $1', filters)
                USING wanted.name, ARRAY(SELECT jsonb_array_elements_text(wanted.paths));
            action := 'changed';
        ELSE
            action := 'unchanged';
        END IF;
        RETURN NEXT;
    END LOOP;
    FOR service IN EXECUTE format(
            'DELETE FROM %s WHERE NOT ($1 ? service) RETURNING service', filters)
            USING services LOOP
        action := 'removed';
        RETURN NEXT;
    END LOOP;
END
$$;

-- A domain's service filters, by name.
CREATE OR REPLACE FUNCTION lake.service_filters(domain_name text)
RETURNS TABLE (service text, paths text[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
    d lake.domains := lake.domain(domain_name);
BEGIN
    RETURN QUERY EXECUTE format('SELECT service, paths FROM %I.%I ORDER BY service',
                                d.domain || '_curated', d.domain || '_schema_service_filters');
END
$$;
