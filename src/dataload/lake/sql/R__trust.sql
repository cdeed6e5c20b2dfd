-- Repeatable script (lake/migrate.py): the one current definition of each function below,
-- re-applied whenever this file changes. To change a function, edit its body here; tables,
-- columns and data go in a new versioned migration (V####__what.sql).
--
-- Trust (the rules are at the top of V0012__trust.sql): raw never stores a domain's never-store
-- fields, raw is insert-only, and one writer per domain, which must still hold its lock on
-- the same server incarnation to load or delete.

-- Never-store fields ---------------------------------------------------------------------------

-- A regular expression that matches exactly the field names of the patterns, without case (a
-- trailing * matches a prefix).
CREATE OR REPLACE FUNCTION lake.never_store_name_pattern(patterns text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '^(' || (SELECT string_agg(CASE WHEN right(p, 1) = '*'
                                       THEN regexp_replace(left(p, -1), '([^A-Za-z0-9_])', '\\\1', 'g') || '.*'
                                       ELSE regexp_replace(p, '([^A-Za-z0-9_])', '\\\1', 'g') END, '|')
                FROM unnest(patterns) AS p) || ')$';

-- The value without the never-store fields, at any depth, given two tests: `names` matches a
-- never-store field's name (lake.never_store_name_pattern), `text_pattern` a value's text that
-- holds one (lake.never_store_pattern). The fields are removed where they stand, and only the
-- members whose text holds one are walked: stripping a 5 KB person costs the path to its
-- never-store fields (about 150 us), not a rebuild of all of it.
CREATE OR REPLACE FUNCTION lake.strip_matching(value jsonb, text_pattern text, names text)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    result jsonb := value;
    member record;
BEGIN
    IF jsonb_typeof(value) = 'object' THEN
        result := value - ARRAY(SELECT k FROM jsonb_object_keys(value) AS k WHERE k ~* names);
        FOR member IN SELECT e.key AS at, e.value AS item FROM jsonb_each(result) AS e
                      WHERE jsonb_typeof(e.value) IN ('object', 'array')
                        AND e.value::text ~* text_pattern LOOP
            result := jsonb_set(result, ARRAY[member.at],
                                lake.strip_matching(member.item, text_pattern, names));
        END LOOP;
    ELSIF jsonb_typeof(value) = 'array' THEN
        FOR member IN SELECT (a.n - 1)::text AS at, a.item FROM jsonb_array_elements(value)
                                                          WITH ORDINALITY AS a(item, n)
                      WHERE jsonb_typeof(a.item) IN ('object', 'array')
                        AND a.item::text ~* text_pattern LOOP
            result := jsonb_set(result, ARRAY[member.at],
                                lake.strip_matching(member.item, text_pattern, names));
        END LOOP;
    END IF;
    RETURN result;
END
$$;

-- Raw is insert-only ----------------------------------------------------------------------------

-- BEFORE UPDATE, DELETE or TRUNCATE on raw: refused. Raw is the history other teams audit.
-- The administrator's escape, `SET LOCAL dataload.allow_raw_rewrite = on`, is honoured only for
-- the table's owner (or a role that can act as it): anyone may set a custom setting, so the
-- setting alone proves nothing. Runs as the caller (SECURITY INVOKER): current_user is who
-- rewrites. The trigger fires in every session mode (ENABLE ALWAYS, lake.protect_raw).
CREATE OR REPLACE FUNCTION lake.raw_refuse_rewrite() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('dataload.allow_raw_rewrite', true) = 'on'
       AND pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'USAGE') THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '%.% is insert-only history: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'prohibited_sql_statement_attempted',
              HINT = 'To correct history, insert a new version (or a row with deleted = true). '
                     'The lake''s owner can allow a rewrite for one transaction with '
                     'SET LOCAL dataload.allow_raw_rewrite = on; xform and curated do not follow it.';
END
$$;

-- One writer per domain --------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION lake.writer_lock_key(domain_name text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN hashtextextended('dataload writer ' || domain_name, 0);

-- Whether backend `pid` holds the writer lock of a domain (of this database).
CREATE OR REPLACE FUNCTION lake.holds_writer_lock(domain_name text, pid integer) RETURNS boolean
LANGUAGE sql STABLE
RETURN EXISTS (
    SELECT FROM pg_locks AS l
    WHERE l.locktype = 'advisory' AND l.granted AND l.pid = holds_writer_lock.pid
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.objsubid = 1
      AND l.classid = ((lake.writer_lock_key(domain_name) >> 32) & 4294967295)::oid
      AND l.objid = (lake.writer_lock_key(domain_name) & 4294967295)::oid);

-- The run, if it is running and its writer still holds the lock on this server incarnation.
CREATE OR REPLACE FUNCTION lake.writing_run(run bigint) RETURNS lake.runs
LANGUAGE plpgsql AS $$
DECLARE
    r lake.runs := lake.running_run(run);
BEGIN
    IF r.server_started IS DISTINCT FROM pg_postmaster_start_time() THEN
        RAISE EXCEPTION '% run % started before the database server restarted: it can neither '
                        'load nor delete any more', r.domain, run
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'what it committed before is kept; run the flow again';
    END IF;
    IF NOT lake.holds_writer_lock(r.domain, r.writer_pid) THEN
        RAISE EXCEPTION '% run % no longer holds the % writer lock (its session ended)',
            r.domain, run, r.domain
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'what it committed before is kept; run the flow again';
    END IF;
    RETURN r;
END
$$;
