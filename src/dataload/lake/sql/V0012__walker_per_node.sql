-- Walkers, second form: one function per node of the merged tree (no dispatch on a node number
-- at every call), and whether a service's part is meaningful worked out during the walk (no
-- JSON path query over every curated copy afterwards).
--
-- A node function takes a JSON value and returns an array of 2 x S entries for S services:
-- entry s is service s's part of the value as JSON text (NULL: nothing left), entry S + s is
-- 't' when that part holds a string, number or boolean (at the root: not counting the key
-- fields), else NULL. The functions of a walker are named walk_<hash>_<node>; the root is
-- node 1, and lake.walkers.walker names it.

DROP FUNCTION lake.filter_record(jsonb, jsonb, text[]);
DROP FUNCTION lake.curated_data(jsonb, text[]);
DROP FUNCTION lake.ensure_walker(text, jsonb[]);
DROP FUNCTION lake.walker_source(text, jsonb[]);
DROP FUNCTION lake.walker_nodes(text, jsonb[], int);

-- 't' when a value is a string, number or boolean, or holds one; else NULL (absent included).
CREATE FUNCTION lake.value_flag(value jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN jsonb_typeof(value) IN ('string', 'number', 'boolean') THEN 't'
            WHEN jsonb_typeof(value) IN ('object', 'array') AND lake.has_value(value) THEN 't'
       END;

-- The CREATE FUNCTION statements of node `id` of a walker and of the nodes below it (numbered
-- from id + 1 on). `trees` holds each service's compiled tree at this node (NULL for services
-- that do not come this way); `ignored` are the keys that do not count as meaningful here (the
-- key fields at the root, none below).
CREATE FUNCTION lake.walker_nodes(
    prefix text, trees jsonb[], ignored text[], id int, OUT sources text[], OUT next_id int
)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $body$
DECLARE
    services  int := cardinality(trees);
    self      text := format('lake.%I', prefix || '_' || id);
    member    record;
    child     record;
    steps     text := '';
    variables text := '';
    -- Every service's pieces (JSON text) and flags, in key order, with the service of each.
    pieces    text[] := '{}';
    flags     text[] := '{}';
    owners    int[] := '{}';
    piece     text;
    flag      text;
    calls     int := 0;
    shared    int := 0;
    s         int;
    objects   text[];
    elements  text[];
    arrays    text[];
BEGIN
    sources := '{}';
    next_id := id + 1;
    FOR member IN
        SELECT m.key,
               coalesce(array_agg(t.n ORDER BY t.n) FILTER (WHERE m.sub = 'true'), '{}') AS whole,
               coalesce(array_agg(t.n ORDER BY t.n) FILTER (WHERE m.sub <> 'true'), '{}') AS deeper
        FROM unnest(trees) WITH ORDINALITY AS t(tree, n), jsonb_each(t.tree) AS m(key, sub)
        GROUP BY m.key ORDER BY m.key COLLATE "C"
    LOOP
        IF cardinality(member.whole) > 0 THEN
            piece := format('(%s || (node -> %L)::text)', lake.walker_key(member.key), member.key);
            flag := format('lake.value_flag(node -> %L)', member.key);
            IF cardinality(member.whole) > 1 THEN  -- serialised once for all its services
                shared := shared + 1;
                variables := variables || format(E'\n    w%s text;', shared);
                steps := steps || format(E'        w%s := %s;\n', shared, piece);
                piece := 'w' || shared;
            END IF;
            pieces := pieces || array_fill(piece, ARRAY[cardinality(member.whole)]);
            flags := flags || array_fill(CASE WHEN member.key <> ALL (ignored) THEN flag END,
                                         ARRAY[cardinality(member.whole)]);
            owners := owners || member.whole;
        END IF;
        IF cardinality(member.deeper) > 0 THEN
            calls := calls + 1;
            child := lake.walker_nodes(prefix, ARRAY(
                SELECT CASE WHEN trees[i] -> member.key <> 'true' THEN trees[i] -> member.key END
                FROM generate_series(1, services) AS i ORDER BY i), '{}', next_id);
            variables := variables || format(E'\n    b%s text[];', calls);
            steps := steps || format(E'        b%s := lake.%I(node -> %L);\n',
                                     calls, prefix || '_' || next_id, member.key);
            pieces := pieces || ARRAY(
                SELECT format('(%s || b%s[%s])', lake.walker_key(member.key), calls, n)
                FROM unnest(member.deeper) WITH ORDINALITY AS o(n, position) ORDER BY position);
            flags := flags || ARRAY(
                SELECT CASE WHEN member.key <> ALL (ignored)
                            THEN format('b%s[%s]', calls, services + n) END
                FROM unnest(member.deeper) WITH ORDINALITY AS o(n, position) ORDER BY position);
            owners := owners || member.deeper;
            sources := sources || child.sources;
            next_id := child.next_id;
        END IF;
    END LOOP;
    FOR s IN 1 .. services LOOP
        IF trees[s] IS NULL THEN
            objects[s] := 'NULL';
            objects[services + s] := 'NULL';
            elements[s] := 'NULL';
            elements[services + s] := 'NULL';
        ELSE
            objects[s] := format($f$'{' || nullif(%s, '') || '}'$f$,
                                 lake.walker_concat(ARRAY(
                                     SELECT p FROM unnest(pieces, owners)
                                         WITH ORDINALITY AS o(p, owner, position)
                                     WHERE owner = s ORDER BY position)));
            -- coalesce stops at the first piece that holds something.
            objects[services + s] := coalesce(
                (SELECT 'coalesce(' || string_agg(f, ', ' ORDER BY position) || ')'
                 FROM unnest(flags, owners) WITH ORDINALITY AS o(f, owner, position)
                 WHERE owner = s AND f IS NOT NULL),
                'NULL');
            elements[s] := format($f$nullif(concat_ws(',', a[%1$s], e[%1$s]), '')$f$, s);
            elements[services + s] := format('coalesce(a[%1$s], e[%1$s])', services + s);
        END IF;
    END LOOP;
    arrays := ARRAY(
        SELECT CASE WHEN trees[i] IS NULL THEN 'NULL' ELSE format($f$'[' || a[%s] || ']'$f$, i) END
        FROM generate_series(1, services) AS i ORDER BY i)
        || ARRAY(SELECT format('a[%s]', services + i) FROM generate_series(1, services) AS i
                 ORDER BY i);
    sources := format($f$
CREATE FUNCTION %1$s(node jsonb) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $walker$
-- Generated by lake.walker_nodes from service filters; do not edit.
DECLARE
    a text[];
    e text[];%2$s
BEGIN
    CASE jsonb_typeof(node)
    WHEN 'object' THEN
%3$s        RETURN ARRAY[%4$s]::text[];
    WHEN 'array' THEN
        FOR i IN 0 .. jsonb_array_length(node) - 1 LOOP
            e := %1$s(node -> i);
            CONTINUE WHEN e IS NULL;
            a := ARRAY[%5$s]::text[];
        END LOOP;
        RETURN ARRAY[%6$s]::text[];
    ELSE
        RETURN NULL;
    END CASE;
END
$walker$$f$,
        self, variables, steps, array_to_string(objects, E',\n                     '),
        array_to_string(elements, ', '), array_to_string(arrays, ', ')) || sources;
END
$body$;

-- The walker for a list of compiled trees and key fields, created in `schema` (lake, or
-- pg_temp) unless it exists; returns the name of its root function.
CREATE FUNCTION lake.ensure_walker(schema text, trees jsonb[], key_fields text[]) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    prefix text := 'walk_' || md5(trees::text || key_fields::text);
    source text;
BEGIN
    IF to_regprocedure(format('%I.%I(jsonb)', schema, prefix || '_1')) IS NULL THEN
        FOREACH source IN ARRAY (lake.walker_nodes(prefix, trees, key_fields, 1)).sources LOOP
            IF schema <> 'lake' THEN
                source := replace(source, 'lake.' || prefix, schema || '.' || prefix);
            END IF;
            EXECUTE source;
        END LOOP;
    END IF;
    RETURN prefix || '_1';
END
$$;

-- Make lake.walkers' entry of a domain match its filters table (called when a filter changes).
-- Walkers no domain uses are dropped, except the one just replaced, which a load that started
-- before this change may still be running.
CREATE OR REPLACE FUNCTION lake.compile_walker(domain_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d        lake.domains := lake.domain(domain_name);
    names    text[];
    trees    jsonb[];
    walker   text;
    replaced text;
    stale    regprocedure;
BEGIN
    -- One change of walkers at a time (they share the garbage collection below).
    PERFORM pg_advisory_xact_lock(hashtext('dataload lake walkers'));
    EXECUTE format('SELECT coalesce(array_agg(service ORDER BY service), %1$L),
                           coalesce(array_agg(compiled ORDER BY service), %1$L)
                    FROM %2$I.%3$I',
                   '{}', d.domain || '_curated', d.domain || '_schema_service_filters')
        INTO names, trees;
    walker := lake.ensure_walker('lake', trees, d.key_fields);
    SELECT w.walker INTO replaced FROM lake.walkers AS w WHERE w.domain = d.domain;
    INSERT INTO lake.walkers AS w (domain, walker, services) VALUES (d.domain, walker, names)
    ON CONFLICT (domain) DO UPDATE SET walker = excluded.walker, services = excluded.services;
    FOR stale IN
        SELECT p.oid::regprocedure FROM pg_proc AS p
        WHERE p.pronamespace = 'lake'::regnamespace AND p.proname LIKE 'walk\_%'
          AND split_part(p.proname, '_', 2) <> ALL (ARRAY(
              SELECT split_part(w.walker, '_', 2) FROM lake.walkers AS w
              UNION ALL SELECT split_part(replaced, '_', 2) WHERE replaced IS NOT NULL))
    LOOP
        EXECUTE format('DROP FUNCTION %s', stale);
    END LOOP;
END
$$;

-- One record through one compiled service (for psql and the tests; uses a session's walker).
CREATE FUNCTION lake.filter_record(record jsonb, compiled jsonb, key_fields text[])
RETURNS jsonb
LANGUAGE plpgsql VOLATILE STRICT AS $$
DECLARE
    kept text[];
BEGIN
    EXECUTE format('SELECT pg_temp.%I($1)',
                   lake.ensure_walker('pg_temp', ARRAY[compiled], key_fields))
        INTO kept USING record;
    RETURN CASE WHEN kept[2] IS NOT NULL THEN kept[1]::jsonb END;
END
$$;

-- Propagation, as in V0011, with a walker of this form.
CREATE OR REPLACE FUNCTION lake.raw_propagate() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    d lake.domains := lake.domain(TG_ARGV[0]);
    k text := lake.key_list(d.key_columns);
    w lake.walkers;
BEGIN
    SELECT * INTO w FROM lake.walkers WHERE domain = d.domain;
    IF NOT FOUND THEN  -- a domain installed after V0011 whose filters never changed
        PERFORM lake.compile_walker(d.domain);
        SELECT * INTO w FROM lake.walkers WHERE domain = d.domain;
    END IF;
    EXECUTE format($sql$
        WITH latest AS MATERIALIZED (
            -- plain: the payload decompressed once, for the walker (data stays as stored,
            -- so that xform and the full service reuse its compressed bytes).
            SELECT DISTINCT ON (%2$s) %2$s, %3$I AS data, %3$I || '{}' AS plain, deleted,
                   content_hash, exact_hash, raw_id, dl_insert_date
            FROM new_rows
            ORDER BY %2$s, raw_id DESC),
        live AS (SELECT * FROM latest WHERE NOT deleted),
        gone AS (SELECT * FROM latest WHERE deleted),
        upsert_xform AS (
            INSERT INTO %1$I_xform.%4$I AS x
                (%2$s, %3$I, content_hash, exact_hash, raw_id, modified_date)
            SELECT %2$s, data, content_hash, exact_hash, raw_id, dl_insert_date
            FROM live ORDER BY %2$s
            ON CONFLICT (%2$s) DO UPDATE
            SET %3$I = excluded.%3$I, content_hash = excluded.content_hash,
                exact_hash = excluded.exact_hash,
                raw_id = excluded.raw_id, modified_date = excluded.modified_date,
                deleted_at = NULL),
        mark_deleted AS (
            UPDATE %1$I_xform.%4$I AS x
            SET deleted_at = gone.dl_insert_date, modified_date = gone.dl_insert_date,
                raw_id = gone.raw_id
            FROM gone WHERE %5$s AND x.deleted_at IS NULL),
        walked AS MATERIALIZED (
            -- One walk per record for all services.
            SELECT %6$s, l.dl_insert_date, lake.%7$I(l.plain) AS kept FROM live AS l),
        derived AS MATERIALIZED (
            SELECT 'full' AS service, %6$s, l.dl_insert_date, l.data FROM live AS l
            UNION ALL
            SELECT $1[n], %8$s, f.dl_insert_date,
                   CASE WHEN f.kept[cardinality($1) + n] IS NOT NULL THEN f.kept[n]::jsonb END
            FROM walked AS f CROSS JOIN generate_series(1, cardinality($1)) AS n),
        upsert_curated AS (
            INSERT INTO %1$I_curated.%9$I AS c (service, %2$s, %3$I, modified_date)
            SELECT service, %2$s, data, dl_insert_date FROM derived
            WHERE data IS NOT NULL ORDER BY service, %2$s
            ON CONFLICT (service, %2$s) DO UPDATE
            SET %3$I = excluded.%3$I, modified_date = excluded.modified_date
            WHERE c.%3$I IS DISTINCT FROM excluded.%3$I),
        drop_gone AS (
            DELETE FROM %1$I_curated.%9$I AS c USING gone WHERE %10$s)
        DELETE FROM %1$I_curated.%9$I AS c
        USING derived WHERE derived.data IS NULL AND c.service = derived.service AND %11$s
        $sql$,
        d.domain, k, d.domain || '_data', 'current_' || d.domain || '_data',
        lake.key_match(d.key_columns, 'x', 'gone'), lake.key_list(d.key_columns, 'l'),
        w.walker, lake.key_list(d.key_columns, 'f'), d.domain || '_data_by_service',
        lake.key_match(d.key_columns, 'c', 'gone'), lake.key_match(d.key_columns, 'c', 'derived'))
    USING w.services;
    IF d.on_change IS NOT NULL THEN
        EXECUTE format('SELECT %s()', d.on_change);
    END IF;
    RETURN NULL;
END
$$
SET work_mem = '64MB';

-- Re-derive one service of a domain for every current record, as in V0011, with a walker of
-- this form (a service the walker does not know keeps nothing: its rows are removed).
CREATE OR REPLACE FUNCTION lake.derive_service(domain_name text, service_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d lake.domains := lake.domain(domain_name);
    k text := lake.key_list(d.key_columns);
    w lake.walkers;
BEGIN
    PERFORM lake.compile_walker(d.domain)
    WHERE NOT EXISTS (SELECT FROM lake.walkers WHERE domain = d.domain);
    SELECT * INTO w FROM lake.walkers WHERE domain = d.domain;
    EXECUTE format($sql$
        WITH walked AS MATERIALIZED (
            SELECT %2$s, lake.%8$I(x.%3$I || '{}') AS kept
            FROM %1$I_xform.%4$I AS x
            WHERE x.deleted_at IS NULL AND array_position($2, $1) IS NOT NULL),
        derived AS MATERIALIZED (
            SELECT %6$s, CASE WHEN kept[cardinality($2) + array_position($2, $1)] IS NOT NULL
                              THEN kept[array_position($2, $1)]::jsonb END AS data
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
        lake.key_match(d.key_columns, 'c', 'derived'), w.walker)
    USING service_name, w.services;
END
$$;

-- Walkers of the new form for every domain; those of V0011 go.
SELECT lake.compile_walker(domain) FROM lake.domains ORDER BY domain;
DO $$
DECLARE
    old regprocedure;
BEGIN
    FOR old IN SELECT p.oid::regprocedure FROM pg_proc AS p
               WHERE p.pronamespace = 'lake'::regnamespace AND p.proname LIKE 'walk\_%'
                 AND p.pronargs = 2 LOOP
        EXECUTE format('DROP FUNCTION %s', old);
    END LOOP;
END
$$;
