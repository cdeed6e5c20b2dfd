-- Repeatable script (lake/migrate.py): the one current definition of each function below,
-- re-applied whenever this file changes. To change a function, edit its body here; tables,
-- columns and data go in a new versioned migration (V####__what.sql).
--
-- The term domain's own functions: the active_terms service, kept up to date after every
-- change to terms (lake.domains.on_change of term, set by V0007).

-- The active UGRD terms (DESIGN.md section 2): among live UGRD terms ordered by the query's
-- row number (attr:rownumber, then STRM), the current term (CURRENT_IND = 'Y'), the one
-- before and the one after it, and one more: when the current term is not a Summer term, the
-- term before the previous one if the previous one is a Summer term, else the term after the
-- next one.
CREATE OR REPLACE FUNCTION lake.active_terms()
RETURNS TABLE (acad_career text, strm text, term_data jsonb)
LANGUAGE sql STABLE AS $$
    WITH ugrd AS (
        SELECT t.acad_career, t.strm, t.term_data,
               t.term_data ->> 'DESCR' ~* 'summer|sumr' AS is_summer,
               row_number() OVER (ORDER BY (t.term_data ->> 'attr:rownumber')::numeric,
                                           t.strm) AS pos
        FROM term_xform.current_term_data AS t
        WHERE t.acad_career = 'UGRD' AND t.deleted_at IS NULL),
    cur AS (
        SELECT pos, is_summer FROM ugrd WHERE term_data ->> 'CURRENT_IND' = 'Y'
        ORDER BY pos LIMIT 1),
    extra AS (
        SELECT CASE WHEN coalesce(p.is_summer, false) THEN cur.pos - 2 ELSE cur.pos + 2 END
               AS pos
        FROM cur LEFT JOIN ugrd AS p ON p.pos = cur.pos - 1
        WHERE NOT cur.is_summer)
    SELECT u.acad_career, u.strm, u.term_data
    FROM ugrd AS u, cur
    WHERE u.pos BETWEEN cur.pos - 1 AND cur.pos + 1 OR u.pos IN (SELECT pos FROM extra)
    ORDER BY u.pos
$$;

-- The STRM codes of the active terms, from the active_terms service.
CREATE OR REPLACE FUNCTION lake.active_term_codes() RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT strm FROM term_curated.term_data_by_service
    WHERE service = 'active_terms' ORDER BY strm
$$;

-- Keeps the active_terms service equal to lake.active_terms(); terms are few, so it is
-- recomputed whole after every change to terms.
CREATE OR REPLACE FUNCTION lake.refresh_active_terms() RETURNS void
LANGUAGE sql AS $$
    WITH active AS (SELECT * FROM lake.active_terms()),
    upserted AS (
        INSERT INTO term_curated.term_data_by_service AS c
            (service, acad_career, strm, term_data, modified_date)
        SELECT 'active_terms', acad_career, strm, term_data, now() FROM active
        ON CONFLICT (service, acad_career, strm) DO UPDATE
        SET term_data = excluded.term_data, modified_date = excluded.modified_date
        WHERE c.term_data IS DISTINCT FROM excluded.term_data)
    DELETE FROM term_curated.term_data_by_service AS c
    WHERE c.service = 'active_terms'
      AND (c.acad_career, c.strm) NOT IN (SELECT acad_career, strm FROM active);
$$;
