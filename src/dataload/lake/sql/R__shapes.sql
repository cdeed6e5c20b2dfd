-- Repeatable script (lake/migrate.py): the one current definition of each function below,
-- re-applied whenever this file changes. To change a function, edit its body here; tables,
-- columns and data go in a new versioned migration (V####__what.sql).
--
-- Shapes, drift and contracts (V0019, V0020). The loader computes the shape of each record it
-- stores (lake/shape.py) and keeps it by content hash (lake.keep_shapes); when a run finishes,
-- lake.observe_shape tallies the shapes of the domain's live records (a record unchanged since
-- an earlier run keeps the shape it had: nothing is walked again; when the live records hold
-- what the latest tallied run found, by the sum of their content hashes, its tally is copied),
-- compares the tally with the last accepted one and words the drift, naming the services it
-- breaks, in the run's schema changes (lake.run_details), where the summary, the artifact and
-- the alerts read them.
-- A tabular domain's shape is what its source gave (lake.observe_table_shape, from conform.py).
-- The functions the loader calls run with the owner's rights (SECURITY DEFINER, search_path
-- pinned), as those of R__runs.sql do.

-- The shape of one JSON document, as lake/shape.py computes it: its paths (`[]` after an
-- array's segment for its elements, keys escaped as in JSON Pointer), their JSON types, and the
-- md5 of the sorted "path<TAB>type" entries. For records the loader did not shape (written from
-- psql, or before V0019): slow, and only ever run for those.
CREATE OR REPLACE FUNCTION lake.json_shape(doc jsonb, OUT shape uuid, OUT paths text[], OUT types text[])
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    WITH RECURSIVE node(path, value) AS (
        SELECT '', doc
        UNION ALL
        SELECT CASE WHEN e.key IS NULL THEN n.path || '[]'
                    ELSE n.path || '/' || replace(replace(e.key, '~', '~0'), '/', '~1') END,
               e.value
        FROM node AS n,
             LATERAL (SELECT o.key, o.value
                      FROM jsonb_each(CASE WHEN jsonb_typeof(n.value) = 'object'
                                           THEN n.value ELSE '{}' END) AS o
                      UNION ALL
                      SELECT NULL, a.value
                      FROM jsonb_array_elements(CASE WHEN jsonb_typeof(n.value) = 'array'
                                                     THEN n.value ELSE '[]' END) AS a) AS e),
    entries AS (
        SELECT DISTINCT path, jsonb_typeof(value) AS type,
               path || E'\t' || jsonb_typeof(value) AS entry
        FROM node WHERE path <> '')
    SELECT md5(coalesce(string_agg(entry, E'\n' ORDER BY entry COLLATE "C"), ''))::uuid,
           coalesce(array_agg(path ORDER BY entry COLLATE "C"), '{}'),
           coalesce(array_agg(type ORDER BY entry COLLATE "C"), '{}')
    FROM entries
$$;

-- Keep the shapes of the records a batch stored: `hashes[i]` has shape `shapes[i]`; `defs`
-- holds the shapes the lake may not have yet ({"<shape>": {"paths": [...], "types": [...]}}).
-- Sorted inserts: concurrent batches meeting the same new shapes take their locks in one order.
CREATE OR REPLACE FUNCTION lake.keep_shapes(hashes uuid[], shapes uuid[], defs jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO lake.shapes (shape, paths, types)
    SELECT d.key::uuid,
           ARRAY(SELECT p FROM jsonb_array_elements_text(d.value -> 'paths') WITH ORDINALITY AS a(p, n)
                 ORDER BY n),
           ARRAY(SELECT t FROM jsonb_array_elements_text(d.value -> 'types') WITH ORDINALITY AS a(t, n)
                 ORDER BY n)
    FROM jsonb_each(defs) AS d
    ORDER BY d.key::uuid
    ON CONFLICT (shape) DO NOTHING;
    INSERT INTO lake.content_shapes (content_hash, shape)
    SELECT h, s FROM unnest(hashes, shapes) AS k(h, s) ORDER BY h
    ON CONFLICT (content_hash) DO NOTHING;
END
$$;

-- What a tabular domain's source gave in a run: {"rows": n, "columns": [{"name", "type",
-- "records"}]}, the type as its SQL type and records as the rows that had a value. Adds to what
-- the run observed before (a run may load several scopes).
CREATE OR REPLACE FUNCTION lake.observe_table_shape(run bigint, observed jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO lake.run_shapes AS s (run_id, domain, records)
    SELECT run, r.domain, (observed ->> 'rows')::bigint FROM lake.runs AS r WHERE r.run_id = run
    ON CONFLICT (run_id) DO UPDATE SET records = s.records + excluded.records;
    INSERT INTO lake.run_shape_paths AS p (run_id, path, type, records)
    SELECT run, '/' || (c ->> 'name'), c ->> 'type', (c ->> 'records')::bigint
    FROM jsonb_array_elements(observed -> 'columns') AS c
    ON CONFLICT (run_id, path, type) DO UPDATE SET records = p.records + excluded.records;
END
$$;

-- Tally the shapes of a document domain's live records into the run's shape, with the sum of
-- their content hashes (lake.run_shapes.live_hash, read in the same snapshot); returns how many
-- live records have no shape yet.
CREATE OR REPLACE FUNCTION lake.tally_shape(run bigint, xform text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    unknown bigint;
BEGIN
    EXECUTE format($sql$
        WITH per_shape AS MATERIALIZED (
            SELECT cs.shape, count(*) AS n,
                   sum(uuid_hash_extended(x.content_hash, 0)) AS live_hash
            FROM %s AS x LEFT JOIN lake.content_shapes AS cs ON cs.content_hash = x.content_hash
            WHERE x.deleted_at IS NULL
            GROUP BY cs.shape),
        tallied AS (
            INSERT INTO lake.run_shape_paths (run_id, path, type, records)
            SELECT $1, e.path, e.type, sum(p.n)
            FROM per_shape AS p JOIN lake.shapes AS s ON s.shape = p.shape,
                 unnest(s.paths, s.types) AS e(path, type)
            GROUP BY e.path, e.type)
        UPDATE lake.run_shapes SET records = (SELECT coalesce(sum(n), 0) FROM per_shape),
                                   live_hash = (SELECT coalesce(sum(live_hash), 0) FROM per_shape)
        WHERE run_id = $1
        RETURNING (SELECT coalesce(sum(n), 0) FROM per_shape WHERE shape IS NULL)
        $sql$, xform)
    INTO unknown USING run;
    RETURN unknown;
END
$$;

-- Shape the live records that have no shape (lake.json_shape).
CREATE OR REPLACE FUNCTION lake.backfill_shapes(domain_name text, xform text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format($sql$
        WITH missing AS (
            SELECT DISTINCT ON (x.content_hash) x.content_hash, x.%I AS doc
            FROM %s AS x
            WHERE x.deleted_at IS NULL AND x.content_hash IS NOT NULL
              AND NOT EXISTS (SELECT FROM lake.content_shapes AS cs
                              WHERE cs.content_hash = x.content_hash)),
        shaped AS MATERIALIZED (
            SELECT m.content_hash, j.shape, j.paths, j.types
            FROM missing AS m, lake.json_shape(m.doc) AS j),
        added AS (
            INSERT INTO lake.shapes (shape, paths, types)
            SELECT DISTINCT ON (shape) shape, paths, types FROM shaped ORDER BY shape
            ON CONFLICT (shape) DO NOTHING)
        INSERT INTO lake.content_shapes (content_hash, shape)
        SELECT content_hash, shape FROM shaped ORDER BY content_hash
        ON CONFLICT (content_hash) DO NOTHING
        $sql$, domain_name || '_data', xform);
END
$$;

-- The kind of a column's SQL type, as drift compares tables' source types.
CREATE OR REPLACE FUNCTION lake.type_kind(sql_type text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN sql_type IN ('smallint', 'integer', 'bigint', 'real', 'double precision')
                 OR sql_type LIKE 'numeric%' THEN 'number'
            WHEN sql_type LIKE 'timestamp%' THEN 'timestamp'
            ELSE sql_type END;

-- 1234567 as "1,234,567".
CREATE OR REPLACE FUNCTION lake.thousands(n bigint) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN to_char(n, 'FM999,999,999,999,990');

-- A few keys of live records whose shape holds `path` with one of `types`, or, with `holding`
-- false, of records this run stored whose shape lacks `path` (since `since`). Keys, never values.
CREATE OR REPLACE FUNCTION lake.shape_sample(
    domain_name text, path text, types text[], holding boolean, since timestamptz
) RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    d lake.domains := lake.domain(domain_name);
    keys text[];
BEGIN
    EXECUTE format($sql$
        SELECT coalesce(array_agg(k), '{}') FROM (
            SELECT concat_ws('/', %1$s) AS k
            FROM %2$s AS x
            JOIN lake.content_shapes AS cs ON cs.content_hash = x.content_hash
            JOIN lake.shapes AS s ON s.shape = cs.shape
            WHERE x.deleted_at IS NULL
              AND CASE WHEN $3 THEN EXISTS (SELECT FROM unnest(s.paths, s.types) AS e(p, t)
                                            WHERE e.p = $1 AND e.t = ANY ($2))
                       ELSE x.modified_date >= $4 AND NOT $1 = ANY (s.paths) END
            LIMIT 3) AS q
        $sql$, lake.key_list(d.key_columns, 'x'), lake.xform_table(d.domain))
    INTO keys USING path, types, holding, since;
    RETURN keys;
END
$$;

-- Compare a run's shape with the domain's last accepted one (none: the first shape, nothing to
-- say), keep the drift in lake.shape_drift, and word it: a line per change, then a line per
-- service it breaks (a path of the service, or below one, vanished or changed type; a new path
-- breaks nobody). A tabular domain's new and missing columns are worded by conform.py already
-- ("column x is new in the source: added"): only type changes and services get lines here.
CREATE OR REPLACE FUNCTION lake.compare_shapes(run bigint) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    s lake.run_shapes;
    r lake.runs;
    tabular boolean;
    base bigint;
    drift lake.shape_drift;
    noun text;
    said text;
    renamed text;
    service text;
    lines text[] := '{}';
    affected text[] := '{}';
BEGIN
    SELECT * INTO s FROM lake.run_shapes WHERE run_id = run;
    SELECT * INTO r FROM lake.runs WHERE run_id = run;
    tabular := EXISTS (SELECT FROM lake.tables WHERE domain = s.domain);
    noun := CASE WHEN tabular THEN 'rows' ELSE 'records' END;
    SELECT b.run_id INTO base FROM lake.run_shapes AS b
    WHERE b.domain = s.domain AND b.accepted AND b.run_id < run
    ORDER BY b.run_id DESC LIMIT 1;
    DELETE FROM lake.shape_drift WHERE run_id = run;
    IF base IS NULL THEN
        RETURN lines;
    END IF;
    -- A table's source types are compared by kind: a bigint column that comes as double
    -- precision one day is not drift (its values still fit), text instead of a number is.
    WITH typed AS (
        SELECT p.run_id, p.path, CASE WHEN tabular THEN lake.type_kind(p.type) ELSE p.type END AS type,
               sum(p.records) AS records
        FROM lake.run_shape_paths AS p WHERE p.run_id IN (run, base) GROUP BY 1, 2, 3),
    now_paths AS (
        SELECT p.path, array_agg(p.type ORDER BY p.type) AS types, max(p.records) AS records
        FROM typed AS p WHERE p.run_id = run GROUP BY p.path),
    then_paths AS (
        SELECT p.path, array_agg(p.type ORDER BY p.type) AS types, max(p.records) AS records
        FROM typed AS p WHERE p.run_id = base GROUP BY p.path),
    changed AS (
        SELECT n.path, n.types, t.types AS was,
               (SELECT sum(p.records) FROM typed AS p
                WHERE p.run_id = run AND p.path = n.path AND p.type <> ALL (t.types)) AS records
        FROM now_paths AS n JOIN then_paths AS t USING (path)
        -- null is no type: a value that became null is not a change of type
        WHERE NOT (array_remove(n.types, 'null') <@ t.types) AND array_remove(t.types, 'null') <> '{}')
    INSERT INTO lake.shape_drift (run_id, against, change, path, types, was, records, of_records)
    SELECT run, base, 'appeared', n.path, n.types, '{}', n.records, s.records
    FROM now_paths AS n WHERE NOT EXISTS (SELECT FROM then_paths AS t WHERE t.path = n.path)
    UNION ALL
    SELECT run, base, 'vanished', t.path, t.types, t.types, t.records, s.records
    FROM then_paths AS t WHERE NOT EXISTS (SELECT FROM now_paths AS n WHERE n.path = t.path)
    UNION ALL
    SELECT run, base, 'type', c.path, c.types, c.was, c.records, s.records FROM changed AS c;

    IF tabular THEN
        UPDATE lake.shape_drift AS dr SET services = ARRAY(
            SELECT ts.service FROM lake.table_services AS ts
            WHERE ts.domain = s.domain AND substr(dr.path, 2) = ANY (ts.columns)
            ORDER BY ts.service)
        WHERE dr.run_id = run AND dr.change <> 'appeared';
    ELSE
        UPDATE lake.shape_drift AS dr SET
            services = ARRAY(
                SELECT DISTINCT f.service
                FROM lake.service_filters(s.domain) AS f, unnest(f.paths) AS fp(p)
                WHERE dr.change <> 'appeared'
                  AND (replace(dr.path, '[]', '') = fp.p
                       OR starts_with(replace(dr.path, '[]', ''), fp.p || '/'))
                ORDER BY f.service),
            -- records holding the path (with its new types), or that lost it in this run
            sample = lake.shape_sample(
                s.domain, dr.path,
                ARRAY(SELECT unnest(dr.types) EXCEPT SELECT unnest(dr.was)),
                dr.change <> 'vanished', r.started)
        WHERE dr.run_id = run;
    END IF;

    FOR drift IN SELECT * FROM lake.shape_drift WHERE run_id = run
                 ORDER BY CASE change WHEN 'vanished' THEN 1 WHEN 'type' THEN 2 ELSE 3 END, path LOOP
        said := NULL;
        IF drift.change = 'vanished' THEN
            -- A path that appeared beside it, with the same types in as many records: renamed?
            SELECT a.path INTO renamed FROM lake.shape_drift AS a
            WHERE a.run_id = run AND a.change = 'appeared' AND a.types = drift.types
              AND a.records = least(drift.records, drift.of_records)
              AND regexp_replace(a.path, '/[^/]*$', '') = regexp_replace(drift.path, '/[^/]*$', '')
            ORDER BY a.path LIMIT 1;
            said := format('%s vanished in %s of %s %s', drift.path,
                           lake.thousands(least(drift.records, drift.of_records)),
                           lake.thousands(drift.of_records), noun)
                    || CASE WHEN renamed IS NOT NULL THEN format(' (renamed to %s?)', renamed) ELSE '' END;
            -- A table's missing column is said by conform.py ("... stored null").
            IF NOT tabular THEN
                lines := lines || (said || lake.sample_text(drift.sample));
            END IF;
        ELSIF drift.change = 'type' THEN
            said := format('%s changed type: %s in %s of %s %s, was %s', drift.path,
                           array_to_string(ARRAY(SELECT t FROM unnest(drift.types) AS t
                                                 WHERE t <> ALL (drift.was) AND t <> 'null'
                                                 ORDER BY t), ' or '),
                           lake.thousands(drift.records), lake.thousands(drift.of_records), noun,
                           array_to_string(array_remove(drift.was, 'null'), ' or '));
            lines := lines || (CASE WHEN tabular THEN 'column ' || substr(said, 2) ELSE said END
                               || lake.sample_text(drift.sample));
        ELSIF NOT tabular THEN
            lines := lines || (format('%s appeared: %s in %s of %s %s', drift.path,
                                      array_to_string(drift.types, ' or '),
                                      lake.thousands(drift.records),
                                      lake.thousands(drift.of_records), noun)
                               || lake.sample_text(drift.sample));
        END IF;
        IF said IS NOT NULL THEN
            FOREACH service IN ARRAY drift.services LOOP
                -- In the service's own words: its filter walks through arrays.
                affected := affected || format('service %s affected: %s', service,
                    CASE WHEN tabular THEN 'column ' || substr(said, 2)
                         ELSE replace(said, '[]', '') END);
            END LOOP;
        END IF;
    END LOOP;
    RETURN lines || affected;
END
$$;

-- " (keys U1, U2, U3)" for a drift line; nothing without keys.
CREATE OR REPLACE FUNCTION lake.sample_text(keys text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN cardinality(keys) > 0 THEN format(' (e.g. %s)', array_to_string(keys, ', '))
            ELSE '' END;

-- The shape of a run that finished: for documents the tally of the domain's live records, for
-- tables what lake.observe_table_shape kept (nothing read, an identical file: no shape). It
-- becomes the domain's accepted shape when the run ended complete or incremental. Returns the
-- drift in words (`notes` first: what the loader's contracts discarded), kept with the run's
-- schema changes in lake.run_details.
CREATE OR REPLACE FUNCTION lake.observe_shape(run bigint, notes text[] DEFAULT '{}') RETURNS text[]
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r lake.runs;
    xform text;
    live bigint;
    live_sum numeric;
    earlier lake.run_shapes;
    lines text[] := coalesce(notes, '{}');
BEGIN
    SELECT * INTO r FROM lake.runs WHERE run_id = run;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % does not exist', run USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT FROM lake.tables WHERE domain = r.domain) THEN
        xform := lake.xform_table(r.domain);
        INSERT INTO lake.run_shapes (run_id, domain) VALUES (run, r.domain)
        ON CONFLICT (run_id) DO NOTHING;
        DELETE FROM lake.run_shape_paths WHERE run_id = run;
        -- The live records' contents as the domain's latest tallied run found them (an
        -- unchanged reload, a run that stored nothing): its tally is this one's. A sum of the
        -- content hashes reads the live records without joining their shapes.
        EXECUTE format('SELECT count(*), coalesce(sum(uuid_hash_extended(content_hash, 0)), 0)'
                       ' FROM %s WHERE deleted_at IS NULL', xform)
        INTO live, live_sum;
        SELECT * INTO earlier FROM lake.run_shapes AS s
        WHERE s.domain = r.domain AND s.run_id < run AND s.live_hash IS NOT NULL
        ORDER BY s.run_id DESC LIMIT 1;
        IF earlier.live_hash = live_sum AND earlier.records = live THEN
            INSERT INTO lake.run_shape_paths (run_id, path, type, records)
            SELECT run, p.path, p.type, p.records
            FROM lake.run_shape_paths AS p WHERE p.run_id = earlier.run_id;
            UPDATE lake.run_shapes SET records = live, live_hash = live_sum WHERE run_id = run;
        ELSIF lake.tally_shape(run, xform) > 0 THEN
            PERFORM lake.backfill_shapes(r.domain, xform);
            DELETE FROM lake.run_shape_paths WHERE run_id = run;
            PERFORM lake.tally_shape(run, xform);
        END IF;
    END IF;
    IF EXISTS (SELECT FROM lake.run_shapes WHERE run_id = run) THEN
        UPDATE lake.run_shapes SET accepted = r.status IN ('complete', 'incremental')
        WHERE run_id = run;
        lines := lines || lake.compare_shapes(run);
    END IF;
    IF cardinality(lines) > 0 THEN
        INSERT INTO lake.run_details AS x (run_id, schema_changes) VALUES (run, lines)
        ON CONFLICT (run_id) DO UPDATE SET schema_changes = x.schema_changes || excluded.schema_changes;
    END IF;
    RETURN lines;
END
$$
SET jit = off;

-- A document domain's contract as the loader applies it: one row per rule and path (a
-- service's rule with path '' stands for each of its filter's paths), `owner` the domain or
-- the service that declared it, and for a frozen path the types the last accepted shape had at
-- it and below it ({"/a/b": ["string"]}; NULL before the domain has an accepted shape: a first
-- shape evolves).
CREATE OR REPLACE FUNCTION lake.shape_contract(domain_name text)
RETURNS TABLE (owner text, path text, rule text, on_break text, accepted jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    base bigint;
BEGIN
    SELECT s.run_id INTO base FROM lake.run_shapes AS s
    WHERE s.domain = domain_name AND s.accepted ORDER BY s.run_id DESC LIMIT 1;
    RETURN QUERY
    WITH rules AS (
        SELECT c.service, c.path AS p, c.rule, c.on_break
        FROM lake.shape_contracts AS c WHERE c.domain = domain_name AND c.path <> ''
        UNION
        SELECT c.service, fp.p, c.rule, c.on_break
        FROM lake.shape_contracts AS c
        JOIN lake.service_filters(domain_name) AS f ON f.service = c.service,
             unnest(f.paths) AS fp(p)
        WHERE c.domain = domain_name AND c.path = '')
    SELECT CASE WHEN r.service = '' THEN domain_name ELSE r.service END, r.p, r.rule, r.on_break,
           CASE WHEN r.rule = 'frozen' AND base IS NOT NULL THEN (
               SELECT coalesce(jsonb_object_agg(q.path, q.types), '{}')
               FROM (SELECT sp.path, jsonb_agg(sp.type ORDER BY sp.type) AS types
                     FROM lake.run_shape_paths AS sp
                     WHERE sp.run_id = base
                       AND (replace(sp.path, '[]', '') = r.p
                            OR starts_with(replace(sp.path, '[]', ''), r.p || '/'))
                     GROUP BY sp.path) AS q) END
    FROM rules AS r
    ORDER BY 1, 2, 3;
END
$$;

-- Declare a rule of a document domain's contract (service '': the domain's own; path '': every
-- path of the service), or change what breaking it costs. The path is checked as a service
-- filter's path is.
CREATE OR REPLACE FUNCTION lake.set_contract(
    domain_name text, service_name text, rule_path text, rule_kind text, breaking text
) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM lake.domain(domain_name);
    IF EXISTS (SELECT FROM lake.tables WHERE domain = domain_name) THEN
        RAISE EXCEPTION '% is a tabular domain: its columns are its contract (Table(evolve=False) '
                        'refuses new ones; a value that does not fit its column is rejected)',
                        domain_name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF rule_path <> '' THEN
        PERFORM lake.path_segments(coalesce(nullif(service_name, ''), domain_name), rule_path);
    END IF;
    IF service_name <> '' AND NOT EXISTS (
            SELECT FROM lake.service_filters(domain_name) AS f WHERE f.service = service_name) THEN
        RAISE EXCEPTION '% has no service "%"', domain_name, service_name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'dataload services list ' || domain_name || ' lists them';
    END IF;
    INSERT INTO lake.shape_contracts AS c (domain, service, path, rule, on_break)
    VALUES (domain_name, service_name, rule_path, rule_kind, breaking)
    ON CONFLICT (domain, service, path, rule) DO UPDATE SET on_break = excluded.on_break;
END
$$;
