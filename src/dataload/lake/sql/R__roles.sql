-- Repeatable script (lake/migrate.py): the one current definition of each function below,
-- re-applied whenever this file changes. To change a function, edit its body here; tables,
-- columns and data go in a new versioned migration (V####__what.sql).
--
-- Least privilege. Three kinds of role:
-- * the owner owns every object of the lake and migrates it; it alone can switch a protection
--   off (ALTER TABLE ... DISABLE TRIGGER, SET LOCAL dataload.allow_raw_rewrite = on);
-- * the loader may execute the lake's functions and COPY into the raw tables of document
--   domains, nothing else: the functions a load calls run with the owner's rights (SECURITY
--   DEFINER, search_path pinned), the raw triggers too, so that it needs no privilege on xform,
--   curated or the ledger; it cannot run DDL, switch triggers off or rewrite raw;
-- * consumers read their services (R__consumers.sql, R__tables.sql).
-- Every function of schema lake is kept from PUBLIC: a role must be given EXECUTE.

-- The loader's role, or NULL before `dataload db init` named it.
CREATE OR REPLACE FUNCTION lake.loader_role() RETURNS text
LANGUAGE sql STABLE
RETURN (SELECT rolname FROM pg_roles WHERE oid = (SELECT role_oid FROM lake.roles WHERE kind = 'loader'));

-- Record the roles and give the loader what a load needs, and no more; run by the owner (it
-- grants on objects it owns). Idempotent: `dataload db init` runs it when the roles, the
-- owners, the migrations or the domains changed, so that objects made since are covered.
CREATE OR REPLACE FUNCTION lake.grant_loader(owner_name text, loader_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d lake.domains;
    s text;
BEGIN
    INSERT INTO lake.roles (kind, role_oid) VALUES
        ('owner', lake.role_oid(owner_name)), ('loader', lake.role_oid(loader_name))
    ON CONFLICT (kind) DO UPDATE SET role_oid = excluded.role_oid;
    REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA lake FROM PUBLIC;
    EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA lake TO %I', loader_name);
    EXECUTE format('GRANT USAGE ON SCHEMA lake TO %I', loader_name);
    -- The ledger may be read (a run's summary, its rejections); it is written by functions.
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA lake TO %I', loader_name);
    FOR d IN SELECT * FROM lake.domains LOOP
        FOREACH s IN ARRAY ARRAY[d.domain || '_raw', d.domain || '_xform', d.domain || '_curated'] LOOP
            IF EXISTS (SELECT FROM pg_namespace WHERE nspname = s) THEN
                EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s, loader_name);
            END IF;
        END LOOP;
        IF NOT EXISTS (SELECT FROM lake.tables WHERE domain = d.domain) THEN
            -- The loader's COPY: raw's triggers strip, hash, deduplicate and propagate.
            EXECUTE format('GRANT INSERT ON %s TO %I', lake.raw_table(d.domain), loader_name);
        END IF;
    END LOOP;
END
$$;

-- Make a domain's raw protections hold whoever writes: every trigger of raw (and of its
-- partitions) fires in every session mode (ENABLE ALWAYS: session_replication_role = replica
-- skips the others), and a document domain's row trigger is compiled for it and fires for every
-- row, whatever it supplies (lake.compile_raw_trigger). Idempotent and cheap when all is in
-- place: `dataload db init` runs it for every domain.
CREATE OR REPLACE FUNCTION lake.protect_raw(domain_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    raw regclass := lake.raw_table(domain_name)::regclass;
    t   record;
BEGIN
    IF NOT lake.is_tabular(domain_name) THEN
        PERFORM lake.compile_raw_trigger(domain_name);
    END IF;
    FOR t IN SELECT tg.tgrelid::regclass AS rel, tg.tgname
             FROM (SELECT raw AS relid UNION SELECT relid FROM pg_partition_tree(raw)) AS p
             JOIN pg_trigger AS tg ON tg.tgrelid = p.relid
             WHERE NOT tg.tgisinternal AND tg.tgenabled <> 'A' AND tg.tgparentid = 0 LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', t.rel, t.tgname);
    END LOOP;
END
$$;

-- A regular expression that finds a never-store field's key in a JSON text, compact or as jsonb
-- writes it (`"ssn": `, `"ssn":`; `"finAid` for the prefix finAid*), compared without case: the
-- cheap test before lake.strip_matching walks a record. A string value that merely contains such
-- text costs a walk, never a wrong answer. (A prefix is not followed to the key's closing quote:
-- a name holding an escaped quote, `finAidX\"Y`, would end the match there.) A text in which
-- keys may be escaped (`\u0073sn`) must be tested as jsonb writes it, which escapes no letter.
CREATE OR REPLACE FUNCTION lake.never_store_pattern(patterns text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '"(' || (SELECT string_agg(CASE WHEN right(p, 1) = '*'
                                       THEN regexp_replace(left(p, -1), '([^A-Za-z0-9_])', '\\\1', 'g')
                                       ELSE regexp_replace(p, '([^A-Za-z0-9_])', '\\\1', 'g') || '"\s*:' END, '|')
                FROM unnest(patterns) AS p) || ')';
