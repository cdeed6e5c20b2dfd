-- Service filters: a service is a list of paths such as
-- /studentInfo/studentSemester/studentSemesterInfo/currentGpa. A path walks objects by key and
-- walks *through* arrays (it applies to every element; elements that keep nothing are dropped).
-- Segments may escape '/' as '~1' and '~' as '~0' (JSON Pointer, RFC 6901).
--
-- Paths are compiled once, when a filter is written, into a tree of [key, subtree, "key":]
-- triples (subtree true = keep the whole value; the third element is the key as JSON text,
-- ready to write). The filter then only evaluates simple expressions (no queries), which is
-- what makes it cheap enough to run for every record and service.

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

-- A nested object {key: subtree | true} to the [[key, subtree | true, "key":], ...] form the
-- filter reads.
CREATE FUNCTION lake.tree_pairs(tree jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN (SELECT jsonb_agg(jsonb_build_array(key, CASE WHEN subtree = 'true' THEN subtree
                                                         ELSE lake.tree_pairs(subtree) END,
                                               to_jsonb(key)::text || ':')
                             ORDER BY key)
            FROM jsonb_each(tree) AS node(key, subtree));
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
    RETURN lake.tree_pairs(tree);
END
$$;

-- The part of `node` that `tree` allows, as JSON text, or NULL when nothing is left. Leaves
-- are kept as they are (even null, {} or []); objects and arrays built on the way are dropped
-- when empty. The result is built as text and parsed once at the end: jsonb_build_object and
-- jsonb_build_array would copy their jsonb arguments token by token at every level.
-- Callers pass a decompressed `node` (see lake.raw_propagate): every `->` on a compressed
-- value would decompress the whole record again.
CREATE FUNCTION lake.filter_node(node jsonb, tree jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    kept  text;
    step  jsonb;
    part  jsonb;
    piece text;
    i     int;
BEGIN
    CASE jsonb_typeof(node)
    WHEN 'object' THEN
        FOR i IN 0 .. jsonb_array_length(tree) - 1 LOOP
            step := tree -> i;
            part := node -> (step ->> 0);
            CONTINUE WHEN part IS NULL;
            IF jsonb_typeof(step -> 1) = 'array' THEN
                piece := lake.filter_node(part, step -> 1);
                CONTINUE WHEN piece IS NULL;
            ELSE
                piece := part::text;
            END IF;
            kept := coalesce(kept || ',', '{') || (step ->> 2) || piece;
        END LOOP;
        RETURN kept || '}';
    WHEN 'array' THEN
        FOR i IN 0 .. jsonb_array_length(node) - 1 LOOP
            piece := lake.filter_node(node -> i, tree);
            CONTINUE WHEN piece IS NULL;
            kept := coalesce(kept || ',', '[') || piece;
        END LOOP;
        RETURN kept || ']';
    ELSE
        RETURN NULL;  -- a path that goes on below a scalar finds nothing
    END CASE;
END
$$;

-- The curated copy of `record` for a compiled service, or NULL when it holds nothing meaningful
-- beyond the key fields: no string, number or boolean anywhere (only null, {} or []).
CREATE FUNCTION lake.filter_record(record jsonb, tree jsonb, key_fields text[]) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    kept jsonb := lake.filter_node(record, tree)::jsonb;
BEGIN
    IF kept IS NULL OR NOT jsonb_path_exists(kept - key_fields,
            'lax $.** ? (@.type() == "string" || @.type() == "number" || @.type() == "boolean")')
    THEN
        RETURN NULL;
    END IF;
    RETURN kept;
END
$$;
