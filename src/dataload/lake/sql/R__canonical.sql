-- Repeatable script (lake/migrate.py): the one current definition of each function below,
-- re-applied whenever this file changes. To change a function, edit its body here; tables,
-- columns and data go in a new versioned migration (V####__what.sql).
--
-- Change detection: the canonical text of a JSON value and its hash.
--
-- Two records are equal when their canonical texts are equal. The canonical text is compact
-- JSON in which object keys are sorted, array elements are sorted by their own canonical text
-- (so arrays compare as multisets), and numbers are written as plain decimals without trailing
-- zeros (1.0 and 1 are the same number, as jsonb equality says too). Sorting is by UTF-8 bytes
-- (COLLATE "C"), which is code point order. dataload.lake.canonical computes the same text in
-- Python for the loader; this function is the reference and serves rows written from psql.
CREATE OR REPLACE FUNCTION lake.canonical_json(value jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    CASE jsonb_typeof(value)
    WHEN 'object' THEN
        RETURN '{' || coalesce((
            SELECT string_agg(to_jsonb(key)::text || ':' || lake.canonical_json(item), ','
                              ORDER BY key COLLATE "C")
            FROM jsonb_each(value) AS member(key, item)), '') || '}';
    WHEN 'array' THEN
        RETURN '[' || coalesce((
            SELECT string_agg(element_text, ',' ORDER BY element_text COLLATE "C")
            FROM (SELECT lake.canonical_json(element) AS element_text
                  FROM jsonb_array_elements(value) AS element) AS elements), '') || ']';
    WHEN 'number' THEN
        RETURN trim_scale(value::numeric)::text;
    ELSE
        RETURN value::text;  -- strings (JSON-escaped), true, false, null
    END CASE;
END
$$;

-- The content hash stored on raw and xform rows: md5 of the canonical text, as a uuid (16 bytes,
-- compared as two integers). md5 is enough: it detects changes, it does not defend secrets.
CREATE OR REPLACE FUNCTION lake.content_hash(value jsonb) RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN md5(lake.canonical_json(value))::uuid;
