-- Make a domain's service filters equal to a given set ({"service": ["/path", ...], ...}):
-- new services are added, services whose paths differ are updated, the others are removed.
-- The filters' triggers validate the paths and re-derive exactly the services that changed.
-- Returns one row per service with what happened to it.
CREATE FUNCTION lake.sync_services(domain_name text, services jsonb)
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
CREATE FUNCTION lake.service_filters(domain_name text)
RETURNS TABLE (service text, paths text[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
    d lake.domains := lake.domain(domain_name);
BEGIN
    RETURN QUERY EXECUTE format('SELECT service, paths FROM %I.%I ORDER BY service',
                                d.domain || '_curated', d.domain || '_schema_service_filters');
END
$$;
