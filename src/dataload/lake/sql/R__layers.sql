-- Repeatable script (lake/migrate.py): the one current definition of each function below,
-- re-applied whenever this file changes. To change a function, edit its body here; tables,
-- columns and data go in a new versioned migration (V####__what.sql).
--
-- The three layers of a domain, written once and instantiated per domain by
-- lake.install_domain(). Everything below is generic: the domain's names come from
-- lake.domains and enter SQL only through format('%I'), per statement, never per row.
--
--   <d>_raw.<d>_data                        insert-only history (a row per change or deletion)
--   <d>_xform.current_<d>_data              one row per key: the latest raw version
--   <d>_curated.<d>_data_by_service         per (service, key) the record filtered for a service
--   <d>_curated.<d>_schema_service_filters  the services: (service, paths)
--
-- Propagation raw -> xform -> curated is a statement-level AFTER INSERT trigger on raw that
-- reads the statement's rows from a transition table: one set-based statement per batch,
-- whoever wrote to raw (the loader's COPY, or an INSERT from psql).

-- "a.k1, a.k2" for a domain's key columns (alias NULL: bare names).
CREATE OR REPLACE FUNCTION lake.key_list(columns text[], alias text DEFAULT NULL) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (SELECT string_agg(CASE WHEN alias IS NULL THEN format('%I', c)
                               ELSE format('%I.%I', alias, c) END, ', ' ORDER BY n)
        FROM unnest(columns) WITH ORDINALITY AS k(c, n));

-- "a.k1 = b.k1 AND a.k2 = b.k2".
CREATE OR REPLACE FUNCTION lake.key_match(columns text[], a text, b text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (SELECT string_agg(format('%I.%I = %I.%I', a, c, b, c), ' AND ' ORDER BY n)
        FROM unnest(columns) WITH ORDINALITY AS k(c, n));

-- A domain's row of lake.domains, or an error naming it.
CREATE OR REPLACE FUNCTION lake.domain(name text) RETURNS lake.domains
LANGUAGE plpgsql STABLE AS $$
DECLARE
    result lake.domains;
BEGIN
    SELECT * INTO result FROM lake.domains WHERE domain = name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown lake domain "%"', name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'domains are listed in lake.domains';
    END IF;
    RETURN result;
END
$$;

-- Store a payload column with lz4 when the server was built with it: it compresses several
-- times faster than the default pglz, and every record is compressed once per layer.
CREATE OR REPLACE FUNCTION lake.prefer_lz4(table_name text, column_name text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET COMPRESSION lz4', table_name, column_name);
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    NULL;  -- built without lz4: pglz it is
END
$$;

-- Create a domain's schemas, tables, triggers and history view.
CREATE OR REPLACE FUNCTION lake.install_domain_layers(
    domain_name text, key_columns text[], key_types text[], key_fields text[],
    on_change regproc DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d       text := domain_name;
    data    text := domain_name || '_data';
    k       text := lake.key_list(key_columns);
    key_def text := (SELECT string_agg(format('%I %s NOT NULL', c, t), ', ' ORDER BY n)
                     FROM unnest(key_columns, key_types) WITH ORDINALITY AS s(c, t, n));
BEGIN
    INSERT INTO lake.domains VALUES (d, key_columns, key_types, key_fields, on_change);
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', d || '_raw');
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', d || '_xform');
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', d || '_curated');

    EXECUTE format($sql$
        CREATE TABLE %1$I_raw.%2$I (
            raw_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            %3$s,
            %2$I           jsonb,
            deleted        boolean NOT NULL DEFAULT false,
            content_hash   uuid,
            exact_hash     uuid,
            run_id         bigint,
            dl_insert_date timestamptz NOT NULL DEFAULT now(),
            given_text     text,
            CONSTRAINT %2$I_payload_or_deletion CHECK (
                CASE WHEN deleted THEN %2$I IS NULL ELSE jsonb_typeof(%2$I) = 'object' END))
        $sql$, d, data, key_def);
    EXECUTE format('CREATE INDEX ON %I.%I (%s, raw_id)', d || '_raw', data, k);
    PERFORM lake.prefer_lz4(format('%I.%I', d || '_raw', data), data);
    EXECUTE format($sql$
        COMMENT ON TABLE %1$I_raw.%2$I IS
        'Insert-only history of %1$s records: a row per change (content_hash = md5 of the '
        'canonical JSON, lake.canonical_json; exact_hash = md5 of given_text, the text the '
        'loader was given, keys sorted, which the lake parses into %2$s and never stores) or '
        'deletion (deleted, %2$s NULL). Inserting here updates %1$s_xform and %1$s_curated.'
        $sql$, d, data);
    EXECUTE format('COMMENT ON COLUMN %I.%I.given_text IS %L', d || '_raw', data,
                   'The text the loader was given: raw''s row trigger hashes it into '
                   'exact_hash, parses it, strips it and empties this column.');

    EXECUTE format($sql$
        CREATE TABLE %1$I_xform.%2$I (
            %3$s,
            %4$I          jsonb NOT NULL,
            content_hash  uuid NOT NULL,
            exact_hash    uuid,
            raw_id        bigint NOT NULL,
            modified_date timestamptz NOT NULL,
            deleted_at    timestamptz,
            PRIMARY KEY (%5$s))
        $sql$, d, 'current_' || data, key_def, data, k);
    PERFORM lake.prefer_lz4(format('%I.%I', d || '_xform', 'current_' || data), data);
    EXECUTE format($sql$
        COMMENT ON TABLE %1$I_xform.%2$I IS
        'Current %1$s records, one per key. deleted_at is set when the key left a complete '
        'snapshot of the source; %3$s then keeps the last version.'
        $sql$, d, 'current_' || data, data);

    EXECUTE format($sql$
        CREATE TABLE %1$I_curated.%2$I (
            service       text NOT NULL,
            %3$s,
            %4$I          jsonb NOT NULL,
            modified_date timestamptz NOT NULL,
            PRIMARY KEY (service, %5$s))
        $sql$, d, data || '_by_service', key_def, data, k);
    PERFORM lake.prefer_lz4(format('%I.%I', d || '_curated', data || '_by_service'), data);
    EXECUTE format($sql$
        CREATE TABLE %1$I_curated.%2$I (
            service       text PRIMARY KEY
                          CHECK (service <> '' AND service NOT IN ('full', 'active_terms')),
            paths         text[] NOT NULL,
            compiled      jsonb NOT NULL,
            modified_date timestamptz NOT NULL)
        $sql$, d, d || '_schema_service_filters');
    EXECUTE format($sql$
        COMMENT ON TABLE %1$I_curated.%2$I IS
        'Services of the %1$s curated layer and their allowed paths. Writing here re-derives '
        'the service for every current record; compiled is maintained by a trigger.'
        $sql$, d, d || '_schema_service_filters');

    -- Keys offered by running loads, to find what a complete snapshot no longer has.
    -- Unlogged: it only lives as long as a run.
    EXECUTE format('CREATE UNLOGGED TABLE lake.%I (run_id bigint NOT NULL, %s)',
                   d || '_seen', key_def);

    EXECUTE format($sql$
        CREATE VIEW %1$I_raw.%2$I AS
        SELECT %3$s, raw_id, %4$I, deleted, run_id,
               dl_insert_date AS valid_from,
               lead(dl_insert_date) OVER (PARTITION BY %3$s ORDER BY raw_id) AS valid_to
        FROM %1$I_raw.%4$I
        $sql$, d, d || '_history', k, data);

    EXECUTE format($sql$
        CREATE TRIGGER propagate AFTER INSERT ON %1$I_raw.%2$I
        REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION lake.raw_propagate(%1$L)
        $sql$, d, data);
    EXECUTE format($sql$
        CREATE TRIGGER compile BEFORE INSERT OR UPDATE ON %1$I_curated.%2$I
        FOR EACH ROW EXECUTE FUNCTION lake.filter_compile()
        $sql$, d, d || '_schema_service_filters');
    EXECUTE format($sql$
        CREATE TRIGGER rederive AFTER INSERT OR UPDATE OR DELETE ON %1$I_curated.%2$I
        FOR EACH ROW EXECUTE FUNCTION lake.filter_changed(%1$L)
        $sql$, d, d || '_schema_service_filters');
END
$$;

-- What lake.install_domain_layers creates, made safe: the seen table logged and able to hold a
-- listing, raw guarded against rewrites (its row trigger is lake.compile_raw_trigger's).
CREATE OR REPLACE FUNCTION lake.harden_domain(domain_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d lake.domains := lake.domain(domain_name);
    raw text := format('%I.%I', d.domain || '_raw', d.domain || '_data');
BEGIN
    EXECUTE format('ALTER TABLE lake.%I SET LOGGED', d.domain || '_seen');
    EXECUTE format('ALTER TABLE lake.%I ADD COLUMN IF NOT EXISTS listed boolean NOT NULL DEFAULT false',
                   d.domain || '_seen');
    EXECUTE format('COMMENT ON TABLE lake.%I IS %L', d.domain || '_seen',
                   'Keys offered (listed false) or listed (listed true) by running loads: what a '
                   'complete snapshot is compared with. Logged, so that it survives a crash.');
    EXECUTE format('DROP TRIGGER IF EXISTS insert_only ON %s', raw);
    EXECUTE format('CREATE TRIGGER insert_only BEFORE UPDATE OR DELETE ON %s
                    FOR EACH STATEMENT EXECUTE FUNCTION lake.raw_refuse_rewrite()', raw);
    EXECUTE format('DROP TRIGGER IF EXISTS no_truncate ON %s', raw);
    EXECUTE format('CREATE TRIGGER no_truncate BEFORE TRUNCATE ON %s
                    FOR EACH STATEMENT EXECUTE FUNCTION lake.raw_refuse_rewrite()', raw);
END
$$;

-- Create a domain: its layers (lake.install_domain_layers), its never-store fields, its guards;
-- it is secured as it is created (`dataload db init` also re-secures every domain, should one
-- be missed).
CREATE OR REPLACE FUNCTION lake.install_domain(
    domain_name text, key_columns text[], key_types text[], key_fields text[],
    on_change regproc DEFAULT NULL, never_store text[] DEFAULT '{}'
) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM lake.install_domain_layers(domain_name, key_columns, key_types, key_fields, on_change);
    UPDATE lake.domains SET never_store = install_domain.never_store WHERE domain = domain_name;
    PERFORM lake.harden_domain(domain_name);
    PERFORM lake.protect_raw(domain_name);
    PERFORM lake.secure_curated(domain_name);
END
$$;

-- Raw's row trigger, compiled for each domain (lake.compile_raw_trigger, below): BEFORE INSERT,
-- for every row whatever it supplies, in every session mode (ENABLE ALWAYS), with the owner's
-- rights (the loader may only INSERT into raw). Compares with the key's latest raw row, which
-- includes rows inserted earlier by the same statement (PostgreSQL shows a row-level BEFORE
-- trigger the rows its statement already inserted), so duplicates within one INSERT add no
-- version. No hash is taken on the writer's word where it decides anything: a row that claimed
-- the hashes of another record (the one the source will send next) would otherwise make the
-- lake take that record for unchanged, for good.
-- * given_text, the record's text as the loader was given it (the loader's COPY sends it):
--   the row's exact_hash is its md5, computed here, and the record is parsed from it. A row
--   without it keeps no exact hash (nothing vouches for one), so it never stops a resend.
-- * never-store fields are stripped (found by a test of the text, walked only where the test
--   finds one). A record without a content hash gets the lake's, and so does a row inserted by
--   hand that had to be stripped (a hash it claims is that of the unstripped record); the
--   loader's is that of the record it stripped itself.
-- * the row is skipped when its jsonb equals the latest version's. When it does not, but claims
--   the latest version's content hash or holds the same elements (a source that reordered an
--   array, or a made-up hash), the lake's canonical texts of both decide (2 ms, rare). A skipped
--   row's exact hash becomes the current version's: that text given again stops at lake.offer.
--   A content hash the lake found false is replaced by the lake's.
-- * a deletion: skipped when there is nothing live to delete.
-- The content hash a loader supplies for a new or changed record is kept (canonical.py: 0.06 ms
-- a record, against 2 ms for lake.content_hash): it can make a row's hash wrong, never hide
-- a version (README, "Least privilege").
-- Compiled, the domain's names and never-store patterns are written in: each row runs static
-- statements with cached plans, about half the cost of one function for every domain.
CREATE OR REPLACE FUNCTION lake.compile_raw_trigger(domain_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d     lake.domains := lake.domain(domain_name);
    data  text := d.domain || '_data';
    raw   text := format('%I.%I', d.domain || '_raw', data);
    fn    text := format('lake.%I', 'raw_row_' || d.domain);
    strip text := '';
    body  text;
BEGIN
    IF cardinality(d.never_store) > 0 THEN
        -- The text as given is tested when no key in it can be escaped (no backslash at all):
        -- as jsonb writes it otherwise (lake.never_store_pattern).
        strip := format($strip$
    IF (CASE WHEN strpos(sent, '\') = 0 THEN sent ELSE given::text END) ~* %1$L THEN
        kept := lake.strip_matching(given, %1$L, %2$L);
        IF kept IS DISTINCT FROM given THEN
            NEW.%3$I := kept;
            given := kept;
            IF NEW.exact_hash IS NULL THEN
                NEW.content_hash := NULL;  -- by hand: a hash it claims is the unstripped record's
            END IF;
        END IF;
    END IF;$strip$,
            lake.never_store_pattern(d.never_store), lake.never_store_name_pattern(d.never_store),
            data);
    END IF;
    body := format($body$
DECLARE
    sent text;  -- the text given, when there is one
    given jsonb;
    kept jsonb;
    was_id bigint;
    was_deleted boolean;
    was_hash uuid;
    was jsonb;
    same boolean;
BEGIN
    SELECT r.raw_id, r.deleted, r.content_hash INTO was_id, was_deleted, was_hash
    FROM %1$s AS r WHERE %2$s ORDER BY r.raw_id DESC LIMIT 1;
    IF NEW.deleted THEN
        NEW.given_text := NULL;
        NEW.exact_hash := NULL;
        IF was_deleted IS DISTINCT FROM false THEN
            RETURN NULL;  -- never stored, or already deleted
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.given_text IS NOT NULL THEN
        sent := NEW.given_text;
        NEW.exact_hash := md5(sent)::uuid;
        NEW.%3$I := sent::jsonb;
        NEW.given_text := NULL;
    ELSE
        NEW.exact_hash := NULL;
    END IF;
    given := NEW.%3$I;%4$s
    IF NEW.content_hash IS NULL THEN
        NEW.content_hash := lake.content_hash(given);
    END IF;
    IF was_deleted = false THEN
        SELECT r.%3$I INTO was FROM %1$s AS r WHERE r.raw_id = was_id;
        same := was = given;
        IF NOT same AND (was_hash = NEW.content_hash OR (was @> given AND given @> was)) THEN
            same := lake.canonical_json(was) = lake.canonical_json(given);
            IF NOT same AND was_hash = NEW.content_hash THEN
                NEW.content_hash := lake.content_hash(given);
            END IF;
        END IF;
        IF same THEN
            IF NEW.exact_hash IS NOT NULL THEN
                UPDATE %5$s AS x SET exact_hash = NEW.exact_hash
                WHERE %6$s AND x.raw_id = was_id AND x.exact_hash IS DISTINCT FROM NEW.exact_hash;
            END IF;
            RETURN NULL;
        END IF;
    END IF;
    RETURN NEW;
END
$body$,
        raw,
        (SELECT string_agg(format('r.%1$I = NEW.%1$I', c), ' AND ') FROM unnest(d.key_columns) AS c),
        data, strip,
        format('%I.%I', d.domain || '_xform', 'current_' || data),
        (SELECT string_agg(format('x.%1$I = NEW.%1$I', c), ' AND ') FROM unnest(d.key_columns) AS c));
    -- Only what changed is replaced: db init protects every domain on every run, while another
    -- run may be loading (CREATE OR REPLACE and CREATE TRIGGER would wait for it, or collide).
    IF NOT EXISTS (SELECT FROM pg_proc WHERE oid = to_regprocedure(fn || '()') AND prosrc = body) THEN
        EXECUTE format('CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql
                        SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS %L', fn, body);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_trigger
                   WHERE tgrelid = raw::regclass AND tgname = 'fill_content_hash'
                     AND tgfoid = to_regprocedure(fn || '()') AND tgqual IS NULL
                     AND tgenabled = 'A') THEN
        EXECUTE format('DROP TRIGGER IF EXISTS fill_content_hash ON %s', raw);
        EXECUTE format('CREATE TRIGGER fill_content_hash BEFORE INSERT ON %s FOR EACH ROW
                        EXECUTE FUNCTION %s()', raw, fn);
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER fill_content_hash', raw);
    END IF;
END
$$;

-- What raw's row trigger was before it was compiled for each domain, and still is for a moment
-- while the lake migrates (V0021 points raw at it; lake/migrate.py then compiles): it refuses,
-- so that no row is stored by rules that are not the current ones.
CREATE OR REPLACE FUNCTION lake.raw_fill_hash() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'raw''s row trigger on %.% is not compiled', TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'Run `dataload db init` (or lake.compile_raw_trigger) to compile it.';
END
$$;

-- Statement-level AFTER INSERT on <d>_raw.<d>_data (TG_ARGV[0] = domain): bring xform and
-- curated up to date for the keys of the statement, with the owner's rights (whoever inserted). Each record is walked once for all the
-- services, by the domain's walker in lake.walkers; a domain installed without one gets it
-- compiled here. A key whose statement holds a live row and then its deletion: its xform row
-- takes that live version and is marked deleted.
CREATE OR REPLACE FUNCTION lake.raw_propagate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d lake.domains := lake.domain(TG_ARGV[0]);
    k text := lake.key_list(d.key_columns);
    w lake.walkers;
BEGIN
    SELECT * INTO w FROM lake.walkers WHERE domain = d.domain;
    IF NOT FOUND THEN  -- a domain whose walker was never compiled
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
        -- The last live row of a key the same statement then deleted (rare: usually empty).
        lived AS MATERIALIZED (
            SELECT DISTINCT ON (%2$s) %2$s, %3$I AS data, content_hash, exact_hash
            FROM new_rows AS n
            WHERE NOT n.deleted AND EXISTS (SELECT FROM gone WHERE %12$s)
            ORDER BY %2$s, raw_id DESC),
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
        lived_then_gone AS (
            INSERT INTO %1$I_xform.%4$I AS x
                (%2$s, %3$I, content_hash, exact_hash, raw_id, modified_date, deleted_at)
            SELECT %13$s, lived.data, lived.content_hash, lived.exact_hash, gone.raw_id,
                   gone.dl_insert_date, gone.dl_insert_date
            FROM gone JOIN lived ON %14$s
            ON CONFLICT (%2$s) DO UPDATE
            SET %3$I = excluded.%3$I, content_hash = excluded.content_hash,
                exact_hash = excluded.exact_hash, raw_id = excluded.raw_id,
                modified_date = excluded.modified_date, deleted_at = excluded.deleted_at),
        mark_deleted AS (
            UPDATE %1$I_xform.%4$I AS x
            SET deleted_at = gone.dl_insert_date, modified_date = gone.dl_insert_date,
                raw_id = gone.raw_id
            FROM gone WHERE %5$s AND x.deleted_at IS NULL
              AND NOT EXISTS (SELECT FROM lived WHERE %15$s)),
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
        lake.key_match(d.key_columns, 'c', 'gone'), lake.key_match(d.key_columns, 'c', 'derived'),
        lake.key_match(d.key_columns, 'gone', 'n'), lake.key_list(d.key_columns, 'gone'),
        lake.key_match(d.key_columns, 'gone', 'lived'), lake.key_match(d.key_columns, 'lived', 'x'))
    USING w.services;
    IF d.on_change IS NOT NULL THEN
        EXECUTE format('SELECT %s()', d.on_change);
    END IF;
    RETURN NULL;
END
$$
-- A batch's decompressed payloads and filtered copies are held in memory, not spilled. No JIT
-- compilation, here and in lake.derive_service: their cost estimates grow with the curated
-- table (a hash join over it for deleted keys), and past jit_above_cost (100000 by default: a
-- curated table of a few million rows) PostgreSQL would compile every statement's
-- expressions: with JIT forced on, a COPY of 250 people took 2.3-3.5 s instead of 0.6-0.7 s.
-- Their time goes to function calls and JSON, which JIT does not speed up.
SET work_mem = '64MB'
SET jit = off;

-- What each layer of a domain holds: {"raw", "xform_live", "xform_deleted", "curated": {...}}.
-- Whether a domain holds typed tables (lake.tables) rather than documents: the shared entry
-- points (layer_counts, history, grants, secure_curated) hand those to R__tables.sql's.
CREATE OR REPLACE FUNCTION lake.is_tabular(domain_name text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT FROM lake.tables WHERE domain = domain_name)
$$;

CREATE OR REPLACE FUNCTION lake.layer_counts(domain_name text) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d lake.domains := lake.domain(domain_name);
    raw bigint;
    live bigint;
    gone bigint;
    curated jsonb;
BEGIN
    IF lake.is_tabular(domain_name) THEN
        RETURN lake.table_layer_counts(domain_name);
    END IF;
    EXECUTE format('SELECT count(*) FROM %I.%I', d.domain || '_raw', d.domain || '_data')
        INTO raw;
    EXECUTE format('SELECT count(*) FILTER (WHERE deleted_at IS NULL),
                           count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM %I.%I',
                   d.domain || '_xform', 'current_' || d.domain || '_data')
        INTO live, gone;
    EXECUTE format('SELECT coalesce(jsonb_object_agg(service, n), %L)
                    FROM (SELECT service, count(*) AS n FROM %I.%I GROUP BY service) AS s',
                   '{}', d.domain || '_curated', d.domain || '_data_by_service')
        INTO curated;
    RETURN jsonb_build_object('raw', raw, 'xform_live', live, 'xform_deleted', gone,
                              'curated', curated);
END
$$;

-- The versions of one key of a domain, oldest first, from <d>_raw.<d>_history.
-- key: a JSON array of the key values in key-column order, e.g. ["U12345678"].
CREATE OR REPLACE FUNCTION lake.history(domain_name text, key jsonb)
RETURNS TABLE (raw_id bigint, data jsonb, deleted boolean, run_id bigint,
               valid_from timestamptz, valid_to timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    d lake.domains := lake.domain(domain_name);
    condition text := (SELECT string_agg(format('h.%I = ($1 ->> %s)::%s', c, n - 1, t), ' AND '
                                         ORDER BY n)
                       FROM unnest(d.key_columns, d.key_types) WITH ORDINALITY AS s(c, t, n));
BEGIN
    IF lake.is_tabular(domain_name) THEN
        RETURN QUERY SELECT * FROM lake.table_history(domain_name, key);
        RETURN;
    END IF;
    IF jsonb_typeof(key) <> 'array' OR jsonb_array_length(key) <> cardinality(d.key_columns) THEN
        RAISE EXCEPTION 'a % key has % values (%), got %', d.domain,
            cardinality(d.key_columns), array_to_string(d.key_columns, ', '), key
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT h.raw_id, h.%3$I, h.deleted, h.run_id, h.valid_from, h.valid_to
         FROM %1$I.%2$I AS h WHERE %4$s ORDER BY h.raw_id',
        d.domain || '_raw', d.domain || '_history', d.domain || '_data', condition)
    USING key;
END
$$;
