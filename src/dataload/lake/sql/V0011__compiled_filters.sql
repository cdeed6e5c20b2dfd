-- Service filters compiled to code. Interpreting the merged path tree (V0003's filter_steps)
-- costs about ten PL/pgSQL expressions per step of the tree; generating, from the validated
-- paths, one PL/pgSQL function per set of services in which every step is spelled out
-- (constant keys, one concat_ws per service and object) walks a 5 KB person about 3x faster.
--
-- The generated function ("walker") takes a JSON value and the number of a node of the merged
-- tree, and returns every service's part of the value as JSON text (NULL: nothing left),
-- indexed by the service's position. Objects go key by key; an array applies the same node to
-- each element and drops the elements that keep nothing; anything else keeps nothing.
-- Whether a part is meaningful is decided once per curated copy (lake.curated_data).
--
-- A walker is named after a hash of what it was generated from and never changes: a load that
-- started with one walker finishes with it, whatever a concurrent filter change does. The
-- current walker of each domain, with the service names in position order, is in lake.walkers.

CREATE TABLE lake.walkers (
    domain   text PRIMARY KEY REFERENCES lake.domains,
    walker   text NOT NULL,    -- function name in schema lake
    services text[] NOT NULL   -- service n is position n of the walker's result
);

-- A literal JSON key with its colon, as SQL text: '"key":'.
CREATE FUNCTION lake.walker_key(key text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN quote_literal(to_jsonb(key)::text || ':');

-- concat_ws(',', pieces...) as SQL text, in groups within the 100-argument limit.
CREATE FUNCTION lake.walker_concat(pieces text[]) RETURNS text
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

-- The code of node `id` and of the nodes below it (numbered from id + 1 on). `trees` holds
-- each service's compiled tree at this node (lake.compile_paths; NULL for services that do
-- not come this way); `walker` is the function's qualified name, for the recursive calls.
-- `variables` is the number of b<n>/w<n> variables the code uses.
CREATE FUNCTION lake.walker_nodes(
    walker text, trees jsonb[], id int, OUT code text, OUT next_id int, OUT variables int
)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $body$
DECLARE
    services int := cardinality(trees);
    member   record;
    child    record;
    prepare  text := '';
    below    text := '';
    pieces   text[] := '{}';   -- the pieces of every service's object, in key order...
    owners   int[] := '{}';    -- ...and the service each belongs to
    piece    text;
    calls    int := 0;
    shared   int := 0;
    s        int;
    objects  text[];
    elements text[];
    arrays   text[];
BEGIN
    next_id := id + 1;
    variables := 0;
    FOR member IN
        SELECT m.key,
               coalesce(array_agg(t.n ORDER BY t.n) FILTER (WHERE m.sub = 'true'), '{}') AS whole,
               coalesce(array_agg(t.n ORDER BY t.n) FILTER (WHERE m.sub <> 'true'), '{}') AS deeper
        FROM unnest(trees) WITH ORDINALITY AS t(tree, n), jsonb_each(t.tree) AS m(key, sub)
        GROUP BY m.key ORDER BY m.key COLLATE "C"
    LOOP
        IF cardinality(member.whole) > 0 THEN
            piece := format('(%s || (node -> %L)::text)', lake.walker_key(member.key), member.key);
            IF cardinality(member.whole) > 1 THEN  -- serialised once for all its services
                shared := shared + 1;
                prepare := prepare || format(E'            w%s := %s;\n', shared, piece);
                piece := 'w' || shared;
            END IF;
            pieces := pieces || array_fill(piece, ARRAY[cardinality(member.whole)]);
            owners := owners || member.whole;
        END IF;
        IF cardinality(member.deeper) > 0 THEN
            calls := calls + 1;
            child := lake.walker_nodes(walker, ARRAY(
                SELECT CASE WHEN trees[i] -> member.key <> 'true' THEN trees[i] -> member.key END
                FROM generate_series(1, services) AS i ORDER BY i), next_id);
            below := below || format(E'            b%s := %s(node -> %L, %s);\n',
                                     calls, walker, member.key, next_id);
            pieces := pieces || ARRAY(
                SELECT format('(%s || b%s[%s])', lake.walker_key(member.key), calls, n)
                FROM unnest(member.deeper) WITH ORDINALITY AS o(n, position) ORDER BY position);
            owners := owners || member.deeper;
            code := concat(code, child.code);
            next_id := child.next_id;
            variables := greatest(variables, child.variables);
        END IF;
    END LOOP;
    variables := greatest(variables, calls, shared);
    FOR s IN 1 .. services LOOP
        IF trees[s] IS NULL THEN
            objects[s] := 'NULL';
            elements[s] := 'NULL';
            arrays[s] := 'NULL';
        ELSE
            objects[s] := format($f$'{' || nullif(%s, '') || '}'$f$,
                                 lake.walker_concat(ARRAY(
                                     SELECT p FROM unnest(pieces, owners)
                                         WITH ORDINALITY AS o(p, owner, position)
                                     WHERE owner = s ORDER BY position)));
            elements[s] := format($f$nullif(concat_ws(',', a[%1$s], e[%1$s]), '')$f$, s);
            arrays[s] := format($f$'[' || a[%s] || ']'$f$, s);
        END IF;
    END LOOP;
    code := format($f$
    IF at = %1$s THEN
        CASE jsonb_typeof(node)
        WHEN 'object' THEN
%2$s%3$s            RETURN ARRAY[%4$s]::text[];
        WHEN 'array' THEN
            FOR i IN 0 .. jsonb_array_length(node) - 1 LOOP
                e := %5$s(node -> i, %1$s);
                CONTINUE WHEN e IS NULL;
                a := ARRAY[%6$s]::text[];
            END LOOP;
            RETURN ARRAY[%7$s]::text[];
        ELSE
            RETURN NULL;
        END CASE;
    END IF;$f$,
        id, below, prepare, array_to_string(objects, E',\n                         '), walker,
        array_to_string(elements, ', '), array_to_string(arrays, ', ')) || coalesce(code, '');
END
$body$;

-- CREATE FUNCTION <walker>(node jsonb, at int) for the services' compiled trees, by position.
CREATE FUNCTION lake.walker_source(walker text, trees jsonb[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $body$
DECLARE
    nodes record := lake.walker_nodes(walker, trees, 1);
BEGIN
    RETURN format($f$
CREATE FUNCTION %1$s(node jsonb, at int) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $walker$
-- Generated by lake.walker_source from the service filters; do not edit.
DECLARE
    a text[];
    e text[];%2$s
BEGIN%3$s
    RETURN NULL;
END
$walker$$f$,
        walker,
        (SELECT string_agg(format(E'\n    b%1$s text[];\n    w%1$s text;', v), '' ORDER BY v)
         FROM generate_series(1, nodes.variables) AS v),
        nodes.code);
END
$body$;

-- The walker for a list of compiled trees, created in `schema` (lake, or pg_temp) unless it
-- exists; returns its qualified name.
CREATE FUNCTION lake.ensure_walker(schema text, trees jsonb[]) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    walker text := format('%I.%I', schema, 'walk_' || md5(trees::text));
BEGIN
    IF to_regprocedure(walker || '(jsonb, integer)') IS NULL THEN
        EXECUTE lake.walker_source(walker, trees);
    END IF;
    RETURN walker;
END
$$;

-- A service's curated copy from its walker text: NULL unless it holds a string, number or
-- boolean beyond the key fields.
CREATE FUNCTION lake.curated_data(data jsonb, key_fields text[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN lake.has_value(data - key_fields) THEN data END;

-- Make lake.walkers' entry of a domain match its filters table (called when a filter changes).
-- Walkers no domain uses are dropped, except the one just replaced, which a load that started
-- before this change may still be running.
CREATE FUNCTION lake.compile_walker(domain_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d        lake.domains := lake.domain(domain_name);
    names    text[];
    trees    jsonb[];
    walker   text;
    replaced text;
    stale    text;
BEGIN
    -- One change of walkers at a time (they share the garbage collection below).
    PERFORM pg_advisory_xact_lock(hashtext('dataload lake walkers'));
    EXECUTE format('SELECT coalesce(array_agg(service ORDER BY service), %1$L),
                           coalesce(array_agg(compiled ORDER BY service), %1$L)
                    FROM %2$I.%3$I',
                   '{}', d.domain || '_curated', d.domain || '_schema_service_filters')
        INTO names, trees;
    walker := lake.ensure_walker('lake', trees);
    walker := substr(walker, length('lake.') + 1);
    SELECT w.walker INTO replaced FROM lake.walkers AS w WHERE w.domain = d.domain;
    INSERT INTO lake.walkers AS w (domain, walker, services) VALUES (d.domain, walker, names)
    ON CONFLICT (domain) DO UPDATE SET walker = excluded.walker, services = excluded.services;
    FOR stale IN
        SELECT p.proname FROM pg_proc AS p
        WHERE p.pronamespace = 'lake'::regnamespace AND p.proname LIKE 'walk\_%'
          AND p.proname <> ALL (ARRAY(SELECT w.walker FROM lake.walkers AS w))
          AND p.proname IS DISTINCT FROM replaced
    LOOP
        EXECUTE format('DROP FUNCTION lake.%I(jsonb, integer)', stale);
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
    EXECUTE format('SELECT %s($1, 1)', lake.ensure_walker('pg_temp', ARRAY[compiled]))
        INTO kept USING record;
    RETURN lake.curated_data(kept[1]::jsonb, key_fields);
END
$$;

-- Propagation, as in V0004, with the domain's walker.
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
            SELECT %6$s, l.dl_insert_date, lake.%7$I(l.plain, 1) AS kept FROM live AS l),
        copies AS MATERIALIZED (
            SELECT $2[n] AS service, %8$s, f.dl_insert_date, f.kept[n]::jsonb AS data
            FROM walked AS f CROSS JOIN generate_series(1, cardinality($2)) AS n),
        derived AS MATERIALIZED (
            SELECT 'full' AS service, %6$s, l.dl_insert_date, l.data FROM live AS l
            UNION ALL
            SELECT service, %2$s, dl_insert_date, lake.curated_data(data, $1) FROM copies),
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
    USING d.key_fields, w.services;
    IF d.on_change IS NOT NULL THEN
        EXECUTE format('SELECT %s()', d.on_change);
    END IF;
    RETURN NULL;
END
$$
SET work_mem = '64MB';

-- Re-derive one service of a domain for every current record, as in V0004, with the domain's
-- walker (a service the walker does not know keeps nothing: its rows are removed).
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
            SELECT %2$s, (lake.%8$I(x.%3$I || '{}', 1))[array_position($3, $1)]::jsonb AS data
            FROM %1$I_xform.%4$I AS x
            WHERE x.deleted_at IS NULL AND array_position($3, $1) IS NOT NULL),
        derived AS MATERIALIZED (
            SELECT %6$s, lake.curated_data(data, $2) AS data FROM walked),
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
    USING service_name, d.key_fields, w.services;
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

-- The walkers of the domains installed so far (later domains get theirs with their filters).
SELECT lake.compile_walker(domain) FROM lake.domains ORDER BY domain;

-- The interpreter is replaced.
DROP FUNCTION lake.filter_steps(jsonb, jsonb, text[]);
DROP FUNCTION lake.service_steps(jsonb[]);
DROP FUNCTION lake.curated_copy(text[], int);
