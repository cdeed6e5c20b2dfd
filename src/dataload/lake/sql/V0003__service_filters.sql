-- Service filters: a service is a list of paths such as
-- /studentInfo/studentSemester/studentSemesterInfo/currentGpa. A path walks objects by key and
-- walks *through* arrays (it applies to every element; elements that keep nothing are dropped).
-- Segments may escape '/' as '~1' and '~' as '~0' (JSON Pointer, RFC 6901).
--
-- A service's paths are compiled once, when its filter is written, into a tree
-- {key: true | subtree} (true: keep the whole value). The trees of all the services of a
-- domain are then turned into generated code, the domain's walker (next migration), so that a
-- record is walked once for all of them.

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

-- Whether a JSON value holds a string, number or boolean anywhere.
CREATE FUNCTION lake.has_value(value jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN jsonb_path_exists(value,
    'lax $.** ? (@.type() == "string" || @.type() == "number" || @.type() == "boolean")');
