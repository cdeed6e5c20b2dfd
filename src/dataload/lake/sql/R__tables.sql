-- The machinery of tabular domains (V0016__tabular_domains.sql says what they store). Generic:
-- a domain's names and declared columns enter SQL only through format('%I') and checked types.
--
-- Keyed tables: the loader COPYs a batch (binary, from Arrow) into a temporary staging table and
-- calls lake.table_merge, which hashes rows, sets aside what repeats or clashes, and inserts the
-- new and changed rows into raw; raw's statement trigger brings xform up to date.
-- Facts: the loader asks lake.table_begin_version for a version of its scope (NULL when the
-- current version has the same content hash: nothing to store), COPYs every row into that
-- version's own table, and lake.table_end_version attaches it under the scope's partition. The
-- version becomes current when the run finishes complete (lake.finish_table_run), in the same
-- transaction that ends the run; the previous version stays in raw as history.

-- A declared column type, or an error: types enter DDL as written, so only known ones pass.
CREATE OR REPLACE FUNCTION lake.checked_type(type_name text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF type_name !~ '^(smallint|integer|bigint|real|double precision|numeric(\(\d{1,4}(,\d{1,4})?\))?|text|boolean|date|timestamp|timestamptz)$' THEN
        RAISE EXCEPTION 'column type "%" is not one a tabular domain may declare', type_name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'smallint, integer, bigint, real, double precision, numeric(p,s), text, '
                         'boolean, date, timestamp, timestamptz';
    END IF;
    RETURN type_name;
END
$$;

-- "a.c1, a.c2" for columns [{"name": ...}] (alias NULL: bare names).
CREATE OR REPLACE FUNCTION lake.table_column_list(columns jsonb, alias text DEFAULT NULL)
RETURNS text
LANGUAGE sql IMMUTABLE
RETURN (SELECT string_agg(CASE WHEN alias IS NULL THEN format('%I', c ->> 'name')
                               ELSE format('%I.%I', alias, c ->> 'name') END, ', ' ORDER BY n)
        FROM jsonb_array_elements(columns) WITH ORDINALITY AS t(c, n));

-- "c1 bigint, c2 text" for columns [{"name": ..., "type": ...}].
CREATE OR REPLACE FUNCTION lake.table_column_defs(columns jsonb) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN (SELECT string_agg(format('%I %s', c ->> 'name', lake.checked_type(c ->> 'type')), ', '
                          ORDER BY n)
        FROM jsonb_array_elements(columns) WITH ORDINALITY AS t(c, n));

CREATE OR REPLACE FUNCTION lake.tabular(domain_name text) RETURNS lake.tables
LANGUAGE plpgsql STABLE AS $$
DECLARE
    result lake.tables;
BEGIN
    SELECT * INTO result FROM lake.tables WHERE domain = domain_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION '"%" is not a tabular domain of the lake', domain_name
            USING ERRCODE = 'invalid_parameter_value', HINT = 'tabular domains: lake.tables';
    END IF;
    RETURN result;
END
$$;

-- The name of a scope's partition of a facts table: readable, and unique whatever the value.
CREATE OR REPLACE FUNCTION lake.scope_partition(domain_name text, scope text) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN left(domain_name, 30) || '_' || left(regexp_replace(lower(scope), '[^a-z0-9]+', '_', 'g'), 16)
       || '_' || left(md5(scope), 6);

-- Create a tabular domain: its row in lake.domains and lake.tables, its schemas, raw and xform,
-- the table of keys its runs see, and the guards of raw (insert-only).
CREATE OR REPLACE FUNCTION lake.install_table(
    domain_name text, kind text, key_columns text[], columns jsonb, scope_column text DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    keys      text[] := CASE WHEN kind = 'facts' THEN ARRAY[scope_column] ELSE key_columns END;
    key_types text[];
    raw       text := format('%I.%I', domain_name || '_raw', domain_name);
    xform     text := format('%I.%I', domain_name || '_xform', domain_name);
    k         text;
BEGIN
    IF kind NOT IN ('keyed', 'facts') OR cardinality(keys) IS NULL OR cardinality(keys) = 0 THEN
        RAISE EXCEPTION 'tabular domain %: a keyed table needs key columns, facts a scope column',
            domain_name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg((SELECT c ->> 'type' FROM jsonb_array_elements(columns) AS c
                      WHERE c ->> 'name' = u.key_name) ORDER BY n)
    INTO key_types FROM unnest(keys) WITH ORDINALITY AS u(key_name, n);
    IF array_position(key_types, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'tabular domain %: key or scope columns % must be among its columns',
            domain_name, keys USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO lake.domains (domain, key_columns, key_types, key_fields)
    VALUES (domain_name, keys, key_types, keys);
    INSERT INTO lake.tables (domain, kind, columns, scope_column)
    VALUES (domain_name, kind, columns, scope_column);
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', domain_name || '_raw');
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', domain_name || '_xform');
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', domain_name || '_curated');
    EXECUTE format('CREATE TABLE lake.%I (run_id bigint NOT NULL, listed boolean NOT NULL DEFAULT false, %s)',
                   domain_name || '_seen',
                   (SELECT string_agg(format('%I %s NOT NULL', c, lake.checked_type(t)), ', ' ORDER BY n)
                    FROM unnest(keys, key_types) WITH ORDINALITY AS u(c, t, n)));
    EXECUTE format('CREATE INDEX ON lake.%I (run_id, %s)', domain_name || '_seen', lake.key_list(keys));
    IF kind = 'facts' THEN
        EXECUTE format('CREATE TABLE %s (%s, dl_version bigint NOT NULL) PARTITION BY LIST (%I)',
                       raw, lake.table_column_defs(columns), scope_column);
    ELSE
        EXECUTE format($sql$
            CREATE TABLE %1$s (
                raw_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, %2$s,
                deleted boolean NOT NULL DEFAULT false, dl_hash uuid, run_id bigint,
                dl_insert_date timestamptz NOT NULL DEFAULT now())
            $sql$, raw, lake.table_column_defs(columns));
        FOREACH k IN ARRAY keys LOOP
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', raw, k);
        END LOOP;
        EXECUTE format('CREATE INDEX ON %s (%s, raw_id)', raw, lake.key_list(keys));
        EXECUTE format($sql$
            CREATE TABLE %1$s (%2$s, dl_hash uuid, raw_id bigint NOT NULL,
                               modified_date timestamptz NOT NULL, deleted_at timestamptz,
                               PRIMARY KEY (%3$s))
            $sql$, xform, lake.table_column_defs(columns), lake.key_list(keys));
        EXECUTE format('CREATE TRIGGER propagate AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION lake.table_propagate(%L)', raw, domain_name);
    END IF;
    PERFORM lake.guard_raw_table(raw::regclass);
    PERFORM lake.table_refresh_views(domain_name);
END
$$;

-- Raw is insert-only history: UPDATE, DELETE and TRUNCATE refused (lake.raw_refuse_rewrite).
CREATE OR REPLACE FUNCTION lake.guard_raw_table(raw regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE OR REPLACE TRIGGER insert_only BEFORE UPDATE OR DELETE ON %s
                    FOR EACH STATEMENT EXECUTE FUNCTION lake.raw_refuse_rewrite()', raw);
    EXECUTE format('CREATE OR REPLACE TRIGGER no_truncate BEFORE TRUNCATE ON %s
                    FOR EACH STATEMENT EXECUTE FUNCTION lake.raw_refuse_rewrite()', raw);
    -- In every session mode: session_replication_role = replica skips the others.
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER insert_only, ENABLE ALWAYS TRIGGER no_truncate', raw);
END
$$;

-- Columns a source brought that the table lacks ([{"name", "type"}]): added to raw (and so to
-- every partition), to xform, and to the views. Types are the declared or inferred ones.
CREATE OR REPLACE FUNCTION lake.table_add_columns(domain_name text, added jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t lake.tables := lake.tabular(domain_name);
    c jsonb;
BEGIN
    FOR c IN SELECT * FROM jsonb_array_elements(added) LOOP
        IF t.columns @> jsonb_build_array(jsonb_build_object('name', c ->> 'name')) THEN
            CONTINUE;
        END IF;
        EXECUTE format('ALTER TABLE %I.%I ADD COLUMN %I %s', domain_name || '_raw', domain_name,
                       c ->> 'name', lake.checked_type(c ->> 'type'));
        IF t.kind = 'keyed' THEN
            EXECUTE format('ALTER TABLE %I.%I ADD COLUMN %I %s', domain_name || '_xform',
                           domain_name, c ->> 'name', lake.checked_type(c ->> 'type'));
        END IF;
        t.columns := t.columns || jsonb_build_array(
            jsonb_build_object('name', c ->> 'name', 'type', c ->> 'type'));
    END LOOP;
    UPDATE lake.tables SET columns = t.columns WHERE domain = domain_name;
    PERFORM lake.table_refresh_views(domain_name);
END
$$;

-- (Re)create a domain's views: xform for facts (the current version of every scope, named
-- literally so that PostgreSQL prunes every other partition), and a view per curated service,
-- with the grants lake.service_grants records.
CREATE OR REPLACE FUNCTION lake.table_refresh_views(domain_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t        lake.tables := lake.tabular(domain_name);
    xform    text := format('%I.%I', domain_name || '_xform', domain_name);
    versions text;
    s        lake.table_services;
    view     text;
    role     text;
BEGIN
    IF t.kind = 'facts' THEN
        SELECT string_agg(version::text, ', ' ORDER BY version) INTO versions
        FROM lake.table_versions
        WHERE domain = domain_name AND current_from IS NOT NULL AND current_until IS NULL;
        -- dl_version first: a view's columns can only grow at its end, as the table's do.
        EXECUTE format('CREATE OR REPLACE VIEW %s AS SELECT dl_version, %s FROM %I.%I WHERE %s',
                       xform, lake.table_column_list(t.columns), domain_name || '_raw', domain_name,
                       CASE WHEN versions IS NULL THEN 'false'
                            ELSE format('dl_version IN (%s)', versions) END);
    END IF;
    FOR s IN SELECT * FROM lake.table_services WHERE domain = domain_name LOOP
        view := format('%I.%I', domain_name || '_curated', s.service);
        -- A view's columns can only grow at its end: rebuilt whenever its definition changes.
        EXECUTE format('DROP VIEW IF EXISTS %s', view);
        EXECUTE format('CREATE VIEW %s WITH (security_barrier) AS SELECT %s FROM %s WHERE %s AND (%s)',
                       view,
                       (SELECT string_agg(format('%I', c), ', ' ORDER BY n)
                        FROM unnest(s.columns) WITH ORDINALITY AS u(c, n)),
                       xform,
                       CASE WHEN t.kind = 'keyed' THEN 'deleted_at IS NULL' ELSE 'true' END,
                       coalesce(s.row_filter, 'true'));
        FOR role IN SELECT r.rolname FROM lake.service_grants AS g
                    JOIN pg_roles AS r ON r.oid = g.role_oid
                    WHERE g.domain = domain_name AND g.service = s.service LOOP
            EXECUTE format('GRANT SELECT ON %s TO %I', view, role);
        END LOOP;
    END LOOP;
END
$$;

-- Replace a tabular domain's services ({"name": {"columns": [...], "where": "..."}}): views of
-- services no longer declared are dropped with their grants.
CREATE OR REPLACE FUNCTION lake.table_define_services(domain_name text, services jsonb)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t    lake.tables := lake.tabular(domain_name);
    gone text;
BEGIN
    FOR gone IN SELECT service FROM lake.table_services
                WHERE domain = domain_name AND NOT services ? service LOOP
        EXECUTE format('DROP VIEW IF EXISTS %I.%I', domain_name || '_curated', gone);
        DELETE FROM lake.service_grants WHERE domain = domain_name AND service = gone;
    END LOOP;
    DELETE FROM lake.table_services WHERE domain = domain_name;
    INSERT INTO lake.table_services (domain, service, columns, row_filter)
    SELECT domain_name, s.key, ARRAY(SELECT jsonb_array_elements_text(s.value -> 'columns')),
           s.value ->> 'where'
    FROM jsonb_each(services) AS s;
    PERFORM lake.table_refresh_views(domain_name);
END
$$;

-- Let a role read one service of a tabular domain (its view); false when it already could.
CREATE OR REPLACE FUNCTION lake.grant_table_service(
    domain_name text, service_name text, grantee text
) RETURNS boolean
LANGUAGE plpgsql SET lock_timeout = '10s' AS $$
DECLARE
    who   pg_roles;
    owner text := (SELECT pg_get_userbyid(nspowner) FROM pg_namespace
                   WHERE nspname = domain_name || '_curated');
    added int;
BEGIN
    PERFORM lake.tabular(domain_name);
    SELECT * INTO who FROM pg_roles WHERE oid = lake.role_oid(grantee);
    IF who.rolsuper OR pg_has_role(grantee, owner, 'MEMBER')
       OR pg_has_role(grantee, 'pg_read_all_data', 'MEMBER') THEN
        RAISE EXCEPTION 'role "%" reads every table of the lake already (superuser, the owner, '
                        'or pg_read_all_data)', grantee
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'grant to an ordinary role made for the consuming service';
    END IF;
    IF NOT EXISTS (SELECT FROM lake.table_services
                   WHERE domain = domain_name AND service = service_name) THEN
        RAISE EXCEPTION '% has no service "%"', domain_name, service_name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('its services: %s', (SELECT string_agg(service, ', ' ORDER BY service)
                                                      FROM lake.table_services
                                                      WHERE domain = domain_name));
    END IF;
    PERFORM lake.forget_dropped_roles();
    INSERT INTO lake.service_grants (domain, service, role_oid)
    VALUES (domain_name, service_name, who.oid) ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', domain_name || '_curated', grantee);
    EXECUTE format('GRANT SELECT ON %I.%I TO %I', domain_name || '_curated', service_name, grantee);
    RETURN added > 0;
END
$$;

CREATE OR REPLACE FUNCTION lake.revoke_table_service(
    domain_name text, service_name text, grantee text
) RETURNS boolean
LANGUAGE plpgsql SET lock_timeout = '10s' AS $$
DECLARE
    role    oid := lake.role_oid(grantee);
    removed int;
BEGIN
    PERFORM lake.tabular(domain_name);
    DELETE FROM lake.service_grants
    WHERE domain = domain_name AND service = service_name AND role_oid = role;
    GET DIAGNOSTICS removed = ROW_COUNT;
    IF to_regclass(format('%I.%I', domain_name || '_curated', service_name)) IS NOT NULL THEN
        EXECUTE format('REVOKE SELECT ON %I.%I FROM %I', domain_name || '_curated', service_name,
                       grantee);
    END IF;
    IF NOT EXISTS (SELECT FROM lake.service_grants WHERE domain = domain_name AND role_oid = role) THEN
        EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM %I', domain_name || '_curated', grantee);
    END IF;
    RETURN removed > 0;
END
$$;

-- Statement-level AFTER INSERT on a keyed raw table (TG_ARGV[0] = domain): xform takes each
-- key's latest row of the statement, or marks the key deleted.
CREATE OR REPLACE FUNCTION lake.table_propagate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d    lake.domains := lake.domain(TG_ARGV[0]);
    t    lake.tables := lake.tabular(TG_ARGV[0]);
    k    text := lake.key_list(d.key_columns);
    cols text := lake.table_column_list(t.columns);
    sets text := (SELECT string_agg(format('%I = excluded.%I', c ->> 'name', c ->> 'name'), ', ')
                  FROM jsonb_array_elements(t.columns) AS c
                  WHERE NOT (c ->> 'name') = ANY (d.key_columns));
BEGIN
    EXECUTE format($sql$
        INSERT INTO %1$I.%2$I AS x (%3$s, dl_hash, raw_id, modified_date)
        SELECT %3$s, dl_hash, raw_id, dl_insert_date
        FROM (SELECT DISTINCT ON (%4$s) * FROM new_rows ORDER BY %4$s, raw_id DESC) AS l
        WHERE NOT deleted ORDER BY %4$s
        ON CONFLICT (%4$s) DO UPDATE SET %5$s dl_hash = excluded.dl_hash, raw_id = excluded.raw_id,
            modified_date = excluded.modified_date, deleted_at = NULL
        $sql$, d.domain || '_xform', d.domain, cols, k, coalesce(sets || ',', ''));
    EXECUTE format($sql$
        UPDATE %1$I.%2$I AS x SET deleted_at = l.dl_insert_date, modified_date = l.dl_insert_date,
                                  raw_id = l.raw_id
        FROM (SELECT DISTINCT ON (%3$s) * FROM new_rows ORDER BY %3$s, raw_id DESC) AS l
        WHERE l.deleted AND x.deleted_at IS NULL AND %4$s
        $sql$, d.domain || '_xform', d.domain, k, lake.key_match(d.key_columns, 'x', 'l'));
    RETURN NULL;
END
$$;

-- A keyed table's empty staging table for one batch (temporary, dropped at commit), which the
-- caller may fill: the loader COPYs into it, and lake.table_merge reads it with the owner's
-- rights. Made here so that the loader needs no privilege on raw.
CREATE OR REPLACE FUNCTION lake.table_staging(domain_name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t lake.tables := lake.tabular(domain_name);
BEGIN
    DROP TABLE IF EXISTS pg_temp.staging;
    EXECUTE format('CREATE TEMP TABLE staging ON COMMIT DROP AS SELECT %s FROM %I.%I WITH NO DATA',
                   lake.table_column_list(t.columns), domain_name || '_raw', domain_name);
    IF lake.loader_role() IS NOT NULL THEN
        EXECUTE format('GRANT SELECT, INSERT ON pg_temp.staging TO %I', lake.loader_role());
    END IF;
END
$$;

-- Merge a batch of a keyed table, COPYed into `staging` (the table's columns), into the lake:
-- rows are hashed here (the lake computes hashes, whatever a caller sends); a row the run
-- already stored identically is repeated (stored once); a key with two different rows in the
-- run is rejected; new and changed rows go to raw. Returns the batch's counts, added to the run.
CREATE OR REPLACE FUNCTION lake.table_merge(run bigint, staging regclass)
RETURNS TABLE (offered bigint, inserted bigint, changed bigint, unchanged bigint,
               repeated bigint, rejected bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
-- Row text (and so its hash) must not depend on the session's settings.
SET datestyle = 'ISO, YMD' SET extra_float_digits = 1 SET timezone = 'UTC'
AS $$
DECLARE
    r    lake.runs := lake.writing_run(run);
    d    lake.domains := lake.domain(r.domain);
    t    lake.tables := lake.tabular(r.domain);
    k    text := lake.key_list(d.key_columns);
    cols text := lake.table_column_list(t.columns);
BEGIN
    DROP TABLE IF EXISTS pg_temp.merging;
    -- fate: new, changed, unchanged (a first sight of the key in this run), repeat (seen
    -- identical), clash (two different rows in this batch), conflict (differs from what an
    -- earlier batch of the run stored).
    EXECUTE format($sql$
        CREATE TEMP TABLE merging ON COMMIT DROP AS
        WITH o AS (
            SELECT s.*, md5(ROW(%3$s)::text)::uuid AS h,
                   row_number() OVER (PARTITION BY %2$s, md5(ROW(%3$s)::text) ORDER BY (SELECT 1)) AS nth
            FROM %1$s AS s),
        w AS (
            SELECT o.*, min(h::text) OVER (PARTITION BY %2$s) <> max(h::text) OVER (PARTITION BY %2$s) AS clash
            FROM o)
        SELECT w.*, CASE
            WHEN w.clash THEN 'clash'
            WHEN w.nth > 1 THEN 'repeat'
            WHEN EXISTS (SELECT FROM lake.%4$I AS s WHERE s.run_id = $1 AND NOT s.listed AND %5$s)
                THEN CASE WHEN x.dl_hash = w.h THEN 'repeat' ELSE 'conflict' END
            WHEN x.dl_hash IS NULL AND x.raw_id IS NULL OR x.deleted_at IS NOT NULL THEN 'new'
            WHEN x.dl_hash IS DISTINCT FROM w.h THEN 'changed'
            ELSE 'unchanged' END AS fate
        FROM w LEFT JOIN %6$I.%7$I AS x ON %8$s
        $sql$, staging, k, lake.table_column_list(t.columns, 's'), d.domain || '_seen',
        lake.key_match(d.key_columns, 's', 'w'), d.domain || '_xform', d.domain,
        lake.key_match(d.key_columns, 'x', 'w'))
    USING run;
    EXECUTE format('INSERT INTO %I.%I (%s, dl_hash, run_id)
                    SELECT %s, h, $1 FROM pg_temp.merging WHERE fate IN (%L, %L) ORDER BY %s',
                   d.domain || '_raw', d.domain, cols, cols, 'new', 'changed', k)
    USING run;
    EXECUTE format('INSERT INTO lake.%I (run_id, %s) SELECT $1, %s FROM pg_temp.merging
                    WHERE fate IN (%L, %L, %L)',
                   d.domain || '_seen', k, k, 'new', 'changed', 'unchanged')
    USING run;
    -- A rejection keeps the row's key, never its other values (they may be personal).
    EXECUTE format($sql$
        INSERT INTO lake.rejected (run_id, reason, sample)
        SELECT $1, CASE m.fate WHEN 'clash' THEN 'key offered twice with different content in one batch'
                               ELSE 'key offered again in this run with different content' END,
               left(jsonb_build_object('key', jsonb_build_object(%s))::text, 300)
        FROM pg_temp.merging AS m WHERE m.fate IN ('clash', 'conflict')
        $sql$,
        (SELECT string_agg(format('%L, m.%I', c, c), ', ' ORDER BY n)
         FROM unnest(d.key_columns) WITH ORDINALITY AS u(c, n)))
    USING run;
    RETURN QUERY
    SELECT count(*), count(*) FILTER (WHERE fate = 'new'), count(*) FILTER (WHERE fate = 'changed'),
           count(*) FILTER (WHERE fate = 'unchanged'), count(*) FILTER (WHERE fate = 'repeat'),
           count(*) FILTER (WHERE fate IN ('clash', 'conflict'))
    FROM pg_temp.merging;
END
$$;

-- Facts: whether the scope's current version has this content hash (an identical file). If so
-- the run has seen the scope, its rows count as unchanged, and nothing is to be stored. Asked
-- first by every load of a scope, so versions left by runs that died go here.
CREATE OR REPLACE FUNCTION lake.table_keep_version(run bigint, scope text, content_hash text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r       lake.runs := lake.writing_run(run);
    current lake.table_versions;
BEGIN
    PERFORM lake.drop_orphan_versions(r.domain);
    SELECT * INTO current FROM lake.table_versions AS tv
    WHERE tv.domain = r.domain AND tv.scope = table_keep_version.scope
      AND tv.current_from IS NOT NULL AND tv.current_until IS NULL;
    IF current.content_hash IS DISTINCT FROM table_keep_version.content_hash THEN
        RETURN false;
    END IF;
    PERFORM lake.table_see_scope(run, scope);
    PERFORM lake.record_counts(run, current.rows, 0, 0, current.rows, 0, 0, '[]');
    RETURN true;
END
$$;

-- Facts: the run has seen this scope (its listing: a scope it did not see is not replaced).
CREATE OR REPLACE FUNCTION lake.table_see_scope(run bigint, scope text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r lake.runs := lake.writing_run(run);
    t lake.tables := lake.tabular(r.domain);
BEGIN
    EXECUTE format('INSERT INTO lake.%I (run_id, %I) VALUES ($1, $2::%s)',
                   r.domain || '_seen', t.scope_column,
                   lake.checked_type((SELECT c ->> 'type' FROM jsonb_array_elements(t.columns) AS c
                                      WHERE c ->> 'name' = t.scope_column)))
    USING run, scope;
END
$$;

-- Facts: start a version of `scope` for this run: its number, and the table that takes its rows,
-- standing alone until lake.table_end_version attaches it (readers of raw are never locked out
-- while it loads).
CREATE OR REPLACE FUNCTION lake.table_begin_version(run bigint, scope text, content_hash text)
RETURNS TABLE (version bigint, leaf_schema text, leaf_table text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r    lake.runs := lake.writing_run(run);
    t    lake.tables := lake.tabular(r.domain);
    v    bigint;
    leaf text;
BEGIN
    PERFORM lake.table_see_scope(run, scope);
    INSERT INTO lake.table_versions (domain, scope, run_id, content_hash)
    VALUES (r.domain, scope, run, content_hash) RETURNING table_versions.version INTO v;
    leaf := lake.scope_partition(r.domain, scope) || '_v' || v;
    EXECUTE format('CREATE TABLE %1$I.%2$I (LIKE %1$I.%3$I)', r.domain || '_raw', leaf, r.domain);
    EXECUTE format('ALTER TABLE %I.%I ALTER COLUMN dl_version SET DEFAULT %s,
                    ALTER COLUMN %I SET DEFAULT %L,
                    ADD CONSTRAINT version_bounds CHECK (dl_version = %s),
                    ADD CONSTRAINT scope_bounds CHECK (%I IS NOT NULL AND %I = %L)',
                   r.domain || '_raw', leaf, v, t.scope_column, scope, v, t.scope_column,
                   t.scope_column, scope);
    IF lake.loader_role() IS NOT NULL THEN  -- its COPY; revoked once the version is attached
        EXECUTE format('GRANT SELECT, INSERT ON %I.%I TO %I', r.domain || '_raw', leaf, lake.loader_role());
    END IF;
    RETURN QUERY SELECT v, r.domain || '_raw', leaf;
END
$$;

-- Facts: the version's rows are in; attach its table under the scope's partition of raw (made
-- on the scope's first version) and add its counts to the run.
CREATE OR REPLACE FUNCTION lake.table_end_version(
    run bigint, version bigint, rows bigint, rejected bigint, rejects jsonb
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r     lake.runs := lake.writing_run(run);
    t     lake.tables := lake.tabular(r.domain);
    v     lake.table_versions;
    raw   text := format('%I.%I', r.domain || '_raw', r.domain);
    part  text;
    leaf  text;
BEGIN
    SELECT * INTO v FROM lake.table_versions AS tv
    WHERE tv.version = table_end_version.version AND tv.run_id = run;
    IF NOT FOUND OR v.rows IS NOT NULL THEN
        RAISE EXCEPTION 'version % is not a version run % is loading', version, run
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    part := format('%I.%I', r.domain || '_raw', lake.scope_partition(r.domain, v.scope));
    leaf := format('%I.%I', r.domain || '_raw', lake.scope_partition(r.domain, v.scope) || '_v' || version);
    IF to_regclass(part) IS NULL THEN
        EXECUTE format('CREATE TABLE %s (LIKE %s) PARTITION BY LIST (dl_version)', part, raw);
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT scope_bounds CHECK (%I IS NOT NULL AND %I = %L)',
                       part, t.scope_column, t.scope_column, v.scope);
        EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES IN (%s)',
                       part, leaf, version);
        EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES IN (%L)',
                       raw, part, v.scope);
    ELSE
        EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES IN (%s)',
                       part, leaf, version);
    END IF;
    PERFORM lake.guard_raw_table(leaf::regclass);
    IF lake.loader_role() IS NOT NULL THEN  -- a partition takes inserts of its own: no more
        EXECUTE format('REVOKE ALL ON %s FROM %I', leaf, lake.loader_role());
    END IF;
    UPDATE lake.table_versions AS tv SET rows = table_end_version.rows
    WHERE tv.version = table_end_version.version;
    PERFORM lake.record_counts(run, rows + rejected, rows, 0, 0, 0, rejected, rejects);
END
$$;

-- Versions that never became current, of runs that ended (failed, partial, guarded, killed):
-- their rows were never part of the lake's state; their tables go.
CREATE OR REPLACE FUNCTION lake.drop_orphan_versions(domain_name text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v       lake.table_versions;
    dropped bigint := 0;
BEGIN
    FOR v IN SELECT tv.* FROM lake.table_versions AS tv JOIN lake.runs AS r USING (run_id)
             WHERE tv.domain = domain_name AND tv.current_from IS NULL AND r.status <> 'running' LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I.%I', domain_name || '_raw',
                       lake.scope_partition(domain_name, v.scope) || '_v' || v.version);
        DELETE FROM lake.table_versions WHERE version = v.version;
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END
$$;

-- A domain's raw table and xform relation, whatever its shape.
CREATE OR REPLACE FUNCTION lake.raw_table(domain_name text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN lake.is_tabular(domain_name)
                THEN format('%I.%I', domain_name || '_raw', domain_name)
                ELSE format('%I.%I', domain_name || '_raw', domain_name || '_data') END
$$;

CREATE OR REPLACE FUNCTION lake.xform_table(domain_name text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN lake.is_tabular(domain_name)
                THEN format('%I.%I', domain_name || '_xform', domain_name)
                ELSE format('%I.%I', domain_name || '_xform', 'current_' || domain_name || '_data')
           END
$$;

-- End a run of a tabular domain. Keyed tables end as documents do (lake.finish_run: deletions
-- of live keys of the scope the run did not see, within the listing and mass-deletion rules).
-- Facts: a complete run makes each version it loaded its scope's current one, unless the new
-- version would drop more than max_delete_share of the current one's rows (guarded: a cut file
-- looks like that); the replaced version stays in raw.
CREATE OR REPLACE FUNCTION lake.finish_table_run(
    run bigint, complete boolean, scope jsonb DEFAULT NULL,
    max_delete_share numeric DEFAULT NULL, incomplete text DEFAULT NULL
) RETURNS lake.runs
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r        lake.runs := lake.writing_run(run);
    t        lake.tables := lake.tabular(r.domain);
    verdict  text := 'complete';
    why      text;
    v        record;
    notes    text[] := '{}';
    switched boolean := false;
BEGIN
    IF t.kind = 'keyed' THEN
        RETURN lake.finish_run(run, complete, scope, max_delete_share, incomplete);
    END IF;
    IF NOT complete THEN
        verdict := 'partial';
        why := coalesce(incomplete, 'the run did not see a complete listing');
    END IF;
    FOR v IN SELECT n.version, n.scope, n.rows, o.version AS old_version, o.rows AS old_rows
             FROM lake.table_versions AS n
             LEFT JOIN lake.table_versions AS o
               ON o.domain = n.domain AND o.scope = n.scope
              AND o.current_from IS NOT NULL AND o.current_until IS NULL
             WHERE n.run_id = run AND n.rows IS NOT NULL AND complete ORDER BY n.scope LOOP
        IF max_delete_share IS NOT NULL AND v.old_rows > 0
           AND v.old_rows - v.rows > max_delete_share * v.old_rows THEN
            verdict := 'guarded';
            why := format('%s would go from %s rows to %s (%s%% fewer, more than the %s%% '
                          'guard); if the source really shrank, run again allowing a mass '
                          'deletion', v.scope, v.old_rows, v.rows,
                          round(100.0 * (v.old_rows - v.rows) / v.old_rows, 1),
                          round(100 * max_delete_share, 1));
        END IF;
        IF v.old_version IS NOT NULL THEN
            notes := notes || format('%s: version %s replaced version %s (%s rows), kept as history',
                                     v.scope, v.version, v.old_version, v.old_rows);
        END IF;
    END LOOP;
    IF verdict = 'complete' THEN
        FOR v IN SELECT n.version, o.version AS old_version, n.rows
                 FROM lake.table_versions AS n
                 LEFT JOIN lake.table_versions AS o
                   ON o.domain = n.domain AND o.scope = n.scope
                  AND o.current_from IS NOT NULL AND o.current_until IS NULL
                 WHERE n.run_id = run AND n.rows IS NOT NULL LOOP
            UPDATE lake.table_versions SET current_until = clock_timestamp()
            WHERE version = v.old_version;
            UPDATE lake.table_versions SET current_from = clock_timestamp(), replaced = v.old_version
            WHERE version = v.version;
            IF v.old_version IS NOT NULL THEN  -- a revision: its rows count as changed
                UPDATE lake.runs SET inserted = inserted - v.rows, changed = changed + v.rows
                WHERE run_id = run;
            END IF;
            switched := true;
        END LOOP;
        IF switched THEN
            PERFORM lake.table_refresh_views(r.domain);
        END IF;
        why := nullif(array_to_string(notes, '; '), '');
    END IF;
    EXECUTE format('DELETE FROM lake.%I WHERE run_id = $1', r.domain || '_seen') USING run;
    SELECT * INTO r FROM lake.runs WHERE run_id = run;
    UPDATE lake.runs
    SET status = verdict, finished = clock_timestamp(), deleted = 0,
        outcome = lake.describe_outcome(r, verdict, why, 0)
    WHERE run_id = run
    RETURNING * INTO r;
    RETURN r;
END
$$;

-- What each layer of a tabular domain holds: {"raw", "xform_live", "xform_deleted",
-- "curated": {service: rows}}, as lake.layer_counts for documents.
CREATE OR REPLACE FUNCTION lake.table_layer_counts(domain_name text) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t       lake.tables := lake.tabular(domain_name);
    raw     bigint;
    live    bigint;
    gone    bigint := 0;
    curated jsonb := '{}';
    s       text;
    n       bigint;
BEGIN
    IF t.kind = 'facts' THEN  -- the versions know their rows: no scan of millions
        SELECT coalesce(sum(rows), 0),
               coalesce(sum(rows) FILTER (WHERE current_from IS NOT NULL AND current_until IS NULL), 0)
        INTO raw, live FROM lake.table_versions WHERE domain = domain_name AND rows IS NOT NULL;
    ELSE
        EXECUTE format('SELECT count(*) FROM %I.%I', domain_name || '_raw', domain_name) INTO raw;
        EXECUTE format('SELECT count(*) FILTER (WHERE deleted_at IS NULL),
                               count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM %I.%I',
                       domain_name || '_xform', domain_name) INTO live, gone;
    END IF;
    FOR s IN SELECT service FROM lake.table_services WHERE domain = domain_name ORDER BY 1 LOOP
        EXECUTE format('SELECT count(*) FROM %I.%I', domain_name || '_curated', s) INTO n;
        curated := curated || jsonb_build_object(s, n);
    END LOOP;
    RETURN jsonb_build_object('raw', raw, 'xform_live', live, 'xform_deleted', gone,
                              'curated', curated);
END
$$;

-- The history of one key of a tabular domain, in the shape of lake.history. Keyed: each raw row
-- of the key, its columns as a JSON object. Facts: each stored version of the scope (the key is
-- the scope's value), described by its number, rows and content hash; its rows stay in raw
-- (`WHERE <scope> = ... AND dl_version = <version>`).
CREATE OR REPLACE FUNCTION lake.table_history(domain_name text, key jsonb)
RETURNS TABLE (raw_id bigint, data jsonb, deleted boolean, run_id bigint,
               valid_from timestamptz, valid_to timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    d lake.domains := lake.domain(domain_name);
    t lake.tables := lake.tabular(domain_name);
    condition text := (SELECT string_agg(format('h.%I = ($1 ->> %s)::%s', c, n - 1,
                                                lake.checked_type(ty)), ' AND ' ORDER BY n)
                       FROM unnest(d.key_columns, d.key_types) WITH ORDINALITY AS s(c, ty, n));
BEGIN
    IF jsonb_typeof(key) <> 'array' OR jsonb_array_length(key) <> cardinality(d.key_columns) THEN
        RAISE EXCEPTION 'a % key has % values (%), got %', d.domain,
            cardinality(d.key_columns), array_to_string(d.key_columns, ', '), key
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF t.kind = 'facts' THEN
        RETURN QUERY
        SELECT v.version, jsonb_build_object(
                   'version', v.version, 'rows', v.rows, 'content_hash', v.content_hash,
                   'loaded_at', v.loaded_at,
                   'rows_in_raw', format('%s WHERE %I = %L AND dl_version = %s',
                                         format('%I.%I', domain_name || '_raw', domain_name),
                                         t.scope_column, v.scope, v.version)),
               false, v.run_id, v.current_from, v.current_until
        FROM lake.table_versions AS v
        WHERE v.domain = domain_name AND v.scope = key ->> 0 AND v.current_from IS NOT NULL
        ORDER BY v.version;
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT h.raw_id, CASE WHEN h.deleted THEN NULL ELSE to_jsonb(h) - %3$L END, h.deleted,
                h.run_id, h.dl_insert_date,
                lead(h.dl_insert_date) OVER (ORDER BY h.raw_id)
         FROM %1$I.%2$I AS h WHERE %4$s ORDER BY h.raw_id',
        d.domain || '_raw', d.domain,
        ARRAY['raw_id', 'deleted', 'dl_hash', 'run_id', 'dl_insert_date'], condition)
    USING key;
END
$$;

-- Keep what a run found of its source's columns (added, missing) in the ledger.
CREATE OR REPLACE FUNCTION lake.record_schema_changes(run bigint, changes text[]) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    INSERT INTO lake.run_details AS x (run_id, schema_changes) VALUES (run, changes)
    ON CONFLICT (run_id) DO UPDATE SET schema_changes = excluded.schema_changes
$$;
