-- Repeatable script (lake/migrate.py): the one current definition of each function below,
-- re-applied whenever this file changes. To change a function, edit its body here; tables,
-- columns and data go in a new versioned migration (V####__what.sql).
--
-- Service filters: a service is a list of paths such as
-- /studentInfo/studentSemester/studentSemesterInfo/currentGpa. A path walks objects by key and
-- walks *through* arrays (it applies to every element; elements that keep nothing are dropped).
-- Segments may escape '/' as '~1' and '~' as '~0' (JSON Pointer, RFC 6901).
--
-- A service's paths are compiled once, when its filter is written, into a tree
-- {key: true | subtree} (true: keep the whole value). The trees of all the services of a
-- domain are then turned into generated code, the domain's walker, so that a record is walked
-- once for all of them.
--
-- Interpreting the merged path tree costs about ten PL/pgSQL expressions per step of the tree;
-- generating, from the validated paths, PL/pgSQL functions in which every step is spelled out
-- (constant keys, one concat_ws per service and object) walks a 5 KB person about 3x faster.
-- A walker is one function per node of the merged tree of a domain's services, named
-- walk_<hash>_<node> (the root is node 1) after a hash of what it was generated from: it never
-- changes, so a load that started with one walker finishes with it. The current walker of
-- each domain, with the service names in position order, is in lake.walkers (V0004). The
-- walkers themselves are data, made by lake.compile_walker when a domain's filters change.

-- The segments of a path; raises invalid_parameter_value with a message naming the path.
CREATE OR REPLACE FUNCTION lake.path_segments(service text, path text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    segments text[];
BEGIN
    IF path IS NULL OR path = '' THEN
        RAISE EXCEPTION 'service "%": empty path', service
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'paths look like /studentInfo/studentSemester';
    END IF;
    IF left(path, 1) <> '/' THEN
        RAISE EXCEPTION 'service "%": path "%" does not start with "/"', service, path
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'paths look like /studentInfo/studentSemester';
    END IF;
    segments := string_to_array(substr(path, 2), '/');
    IF '' = ANY (segments) THEN
        RAISE EXCEPTION 'service "%": path "%" has an empty segment ("//", or "/" at the end)',
            service, path
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'paths look like /studentInfo/studentSemester';
    END IF;
    RETURN ARRAY(SELECT replace(replace(segment, '~1', '/'), '~0', '~')
                 FROM unnest(segments) WITH ORDINALITY AS s(segment, position)
                 ORDER BY position);
END
$$;

-- Compile a service's paths. A path that is a prefix of another keeps the whole value.
CREATE OR REPLACE FUNCTION lake.compile_paths(service text, paths text[]) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    path     text;
    segments text[];
    depth    int;
    node     jsonb;
    tree     jsonb := '{}';
BEGIN
    IF paths IS NULL OR cardinality(paths) = 0 THEN
        RAISE EXCEPTION 'service "%": no paths', service
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'a service needs at least one path such as /personid';
    END IF;
    FOREACH path IN ARRAY paths LOOP
        segments := lake.path_segments(service, path);
        FOR depth IN 1 .. cardinality(segments) LOOP
            node := tree #> segments[1:depth];
            EXIT WHEN node = 'true';  -- a shorter path already keeps all of this
            IF depth = cardinality(segments) THEN
                tree := jsonb_set(tree, segments[1:depth], 'true');
            ELSIF node IS NULL THEN
                tree := jsonb_set(tree, segments[1:depth], '{}');
            END IF;
        END LOOP;
    END LOOP;
    RETURN tree;
END
$$;

-- Whether a JSON value holds a string, number or boolean anywhere.
CREATE OR REPLACE FUNCTION lake.has_value(value jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN jsonb_path_exists(value,
    'lax $.** ? (@.type() == "string" || @.type() == "number" || @.type() == "boolean")');

-- A literal JSON key with its colon, as SQL text: '"key":'.
CREATE OR REPLACE FUNCTION lake.walker_key(key text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN quote_literal(to_jsonb(key)::text || ':');

-- concat_ws(',', pieces...) as SQL text, in groups within the 100-argument limit.
CREATE OR REPLACE FUNCTION lake.walker_concat(pieces text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    IF cardinality(pieces) <= 90 THEN
        RETURN format('concat_ws('','', %s)', array_to_string(pieces, ', '));
    END IF;
    RETURN lake.walker_concat(ARRAY(
        SELECT format('nullif(%s, '''')', lake.walker_concat(pieces[g * 90 + 1 : g * 90 + 90]))
        FROM generate_series(0, (cardinality(pieces) - 1) / 90) AS g ORDER BY g));
END
$$;

-- 't' when a value is a string, number or boolean, or holds one; else NULL (absent included).
CREATE OR REPLACE FUNCTION lake.value_flag(value jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN jsonb_typeof(value) IN ('string', 'number', 'boolean') THEN 't'
            WHEN jsonb_typeof(value) IN ('object', 'array') AND lake.has_value(value) THEN 't'
       END;

-- The CREATE FUNCTION statements of node `id` of a walker and of the nodes below it (numbered
-- from id + 1 on). `trees` holds each service's compiled tree at this node (NULL for services
-- that do not come this way); `ignored` are the keys that do not count as meaningful here (the
-- key fields at the root, none below).
CREATE OR REPLACE FUNCTION lake.walker_nodes(
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
CREATE OR REPLACE FUNCTION lake.ensure_walker(schema text, trees jsonb[], key_fields text[]) RETURNS text
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
CREATE OR REPLACE FUNCTION lake.filter_record(record jsonb, compiled jsonb, key_fields text[])
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
