-- Service filters: a service is a list of paths such as
-- /studentInfo/studentSemester/studentSemesterInfo/currentGpa. A path walks objects by key and
-- walks *through* arrays (it applies to every element; elements that keep nothing are dropped).
-- Segments may escape '/' as '~1' and '~' as '~0' (JSON Pointer, RFC 6901).
--
-- A service's paths are compiled once, when its filter is written, into a tree
-- {key: true | subtree} (true: keep the whole value). All the services of a domain are then
-- merged into one tree of steps, so that a record is walked once for all of them: a key that
-- ten services keep is looked up and serialised once. The walk only evaluates simple
-- expressions (no queries), which is what makes it cheap enough for every record.

-- The segments of a path; raises invalid_parameter_value with a message naming the path.
CREATE FUNCTION lake.path_segments(service text, path text) RETURNS text[]
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
CREATE FUNCTION lake.compile_paths(service text, paths text[]) RETURNS jsonb
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

-- Merge compiled service trees (service n = position n in `trees`; NULL where a service does
-- not go this way) into the form lake.filter_steps walks:
--   {"services": "{n,...}",           the services present at this node (int[] text)
--    "steps": [[key, child | null,    child: the merged node below, for the branch services
--               "\"key\":",           the key as JSON text, ready to write
--               "{n,...}",            services keeping the whole value (int[] text)
--               "{n,...}"], ...]}     services going on below (int[] text)
CREATE FUNCTION lake.service_steps(trees jsonb[]) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN (
        WITH members AS (
            SELECT t.n::int AS n, m.key, m.subtree
            FROM unnest(trees) WITH ORDINALITY AS t(tree, n),
                 jsonb_each(t.tree) AS m(key, subtree)),
        keys AS (
            SELECT key,
                   coalesce(array_agg(n ORDER BY n) FILTER (WHERE subtree = 'true'), '{}') AS whole,
                   coalesce(array_agg(n ORDER BY n) FILTER (WHERE subtree <> 'true'), '{}') AS below
            FROM members GROUP BY key)
        SELECT jsonb_build_object(
            'services', (SELECT array_agg(DISTINCT n ORDER BY n) FROM members)::text,
            'steps', coalesce(jsonb_agg(jsonb_build_array(
                key,
                CASE WHEN cardinality(below) > 0 THEN lake.service_steps(ARRAY(
                    SELECT CASE WHEN trees[i] -> key <> 'true' THEN trees[i] -> key END
                    FROM generate_series(1, cardinality(trees)) AS i ORDER BY i)) END,
                to_jsonb(key)::text || ':',
                whole::text,
                below::text) ORDER BY key), '[]'))
        FROM keys);
END
$$;

-- Every service's part of `node`, as JSON text per service position n (NULL: nothing left);
-- position -n is 't' when that text holds something meaningful (a string, number or boolean),
-- not counting the top-level fields named in `ignore` (the key fields). Leaves are kept as they
-- are (even null, {} or []); objects and arrays built on the way are dropped when empty. The
-- result is built as text and parsed once per curated row: jsonb_build_object and
-- jsonb_build_array would copy their jsonb arguments token by token at every level. Callers
-- pass a decompressed `node` (see lake.raw_propagate): every `->` on a compressed value would
-- decompress the whole record again.
CREATE FUNCTION lake.filter_steps(node jsonb, tree jsonb, ignore text[] DEFAULT '{}')
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    steps   jsonb := tree -> 'steps';
    kept    text[];
    closing text;
    step    jsonb;
    part    jsonb;
    piece   text;
    counts  boolean;
    below   text[];
    i       int;
    s       int;
BEGIN
    CASE jsonb_typeof(node)
    WHEN 'object' THEN
        FOR i IN 0 .. jsonb_array_length(steps) - 1 LOOP
            step := steps -> i;
            part := node -> (step ->> 0);
            CONTINUE WHEN part IS NULL;
            counts := NOT (step ->> 0 = ANY (ignore));
            IF step ->> 3 <> '{}' THEN
                piece := (step ->> 2) || part::text;
                counts := counts AND CASE jsonb_typeof(part)
                    WHEN 'null' THEN false
                    WHEN 'object' THEN lake.has_value(part)
                    WHEN 'array' THEN lake.has_value(part)
                    ELSE true END;
                FOREACH s IN ARRAY (step ->> 3)::int[] LOOP
                    kept[s] := coalesce(kept[s] || ',', '{') || piece;
                    IF counts THEN
                        kept[-s] := 't';
                    END IF;
                END LOOP;
            END IF;
            IF step ->> 4 <> '{}' THEN
                below := lake.filter_steps(part, step -> 1);
                CONTINUE WHEN below IS NULL;
                FOREACH s IN ARRAY (step ->> 4)::int[] LOOP
                    CONTINUE WHEN below[s] IS NULL;
                    kept[s] := coalesce(kept[s] || ',', '{') || (step ->> 2) || below[s];
                    IF counts AND below[-s] IS NOT NULL THEN
                        kept[-s] := 't';
                    END IF;
                END LOOP;
            END IF;
        END LOOP;
        closing := '}';
    WHEN 'array' THEN
        FOR i IN 0 .. jsonb_array_length(node) - 1 LOOP
            below := lake.filter_steps(node -> i, tree);
            CONTINUE WHEN below IS NULL;
            FOREACH s IN ARRAY (tree ->> 'services')::int[] LOOP
                CONTINUE WHEN below[s] IS NULL;
                kept[s] := coalesce(kept[s] || ',', '[') || below[s];
                kept[-s] := coalesce(kept[-s], below[-s]);
            END LOOP;
        END LOOP;
        closing := ']';
    ELSE
        RETURN NULL;  -- a path that goes on below a scalar finds nothing
    END CASE;
    IF kept IS NULL THEN
        RETURN NULL;
    END IF;
    FOREACH s IN ARRAY (tree ->> 'services')::int[] LOOP
        kept[s] := kept[s] || closing;  -- NULL stays NULL
    END LOOP;
    RETURN kept;
END
$$;

-- Whether a JSON value holds a string, number or boolean anywhere.
CREATE FUNCTION lake.has_value(value jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN jsonb_path_exists(value,
    'lax $.** ? (@.type() == "string" || @.type() == "number" || @.type() == "boolean")');

-- Service n's curated copy from lake.filter_steps' result: NULL unless it holds something
-- meaningful beyond the key fields.
CREATE FUNCTION lake.curated_copy(kept text[], n int) RETURNS jsonb
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN kept[-n] IS NOT NULL THEN kept[n]::jsonb END;

-- One record through one compiled service (for psql and the tests; layers use the merged walk).
CREATE FUNCTION lake.filter_record(record jsonb, compiled jsonb, key_fields text[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN lake.curated_copy(
    lake.filter_steps(record || '{}', lake.service_steps(ARRAY[compiled]), key_fields), 1);
