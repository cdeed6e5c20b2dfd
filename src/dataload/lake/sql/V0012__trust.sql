-- Trust: a deletion is a claim downstream services act on ("this person left"), so the lake
-- makes it only on positive evidence of absence, from one writer at a time, from run state that
-- survives a crash; raw is insert-only and never stores a domain's never-store fields.
--
-- * Listing. A run may declare the complete listing of its scope (lake.list_keys: the person
--   ids of PeopleSoft, SAP and VDS) apart from the records it loads. A key listed but never
--   loaded is *missing*: the run ends 'partial' and deletes nobody. Without a separate listing,
--   the keys loaded are the listing (term, course).
-- * Mass-deletion guard. A complete run that would delete more than a share of the live keys of
--   its scope deletes nobody and ends 'guarded' (lake.finish_run's max_delete_share).
-- * One writer per domain: a session-level advisory lock, taken by lake.start_run on the
--   connection the run keeps for its whole life. PostgreSQL releases it when that session
--   ends, so a run whose process died leaves the lock free; the next run marks it 'abandoned'.
--   Each batch and the finish check that the run's writer still holds the lock on the same
--   server incarnation (pg_postmaster_start_time): after a crash and restart a run can neither
--   load nor delete; it fails and the next run starts from a clean state.
-- * Durable: the keys a run saw (lake.<d>_seen) are logged now; crash recovery used to empty
--   the unlogged table, after which a finish deleted every key loaded before the crash.

-- The ledger ---------------------------------------------------------------------------------

ALTER TABLE lake.runs DROP CONSTRAINT runs_status_check;
ALTER TABLE lake.runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('running', 'complete', 'partial', 'guarded', 'failed', 'abandoned'));
ALTER TABLE lake.runs
    ADD COLUMN writer_pid     integer,      -- backend holding the domain's writer lock
    ADD COLUMN server_started timestamptz,  -- pg_postmaster_start_time() when the run started
    ADD COLUMN listed         bigint,       -- keys of a declared listing (NULL: none declared)
    ADD COLUMN missing        bigint NOT NULL DEFAULT 0,  -- listed keys never loaded
    ADD COLUMN missing_sample text[],       -- a few of them, for the summary
    ADD COLUMN outcome        text;         -- what the run did, in one sentence
COMMENT ON COLUMN lake.runs.status IS
    'running; complete (a full snapshot: deletions made); partial (stored what came, deleted '
    'nobody); guarded (would have deleted too many: deleted nobody); failed (stopped by an '
    'error: kept what it committed, deleted nobody); abandoned (its process died: same)';

-- lake.offered_rows (V0006) is a SQL-standard function of the domains row type, which pins it:
-- dropped to add the column, then created again as it was.
DROP FUNCTION lake.offered_rows(lake.domains);
ALTER TABLE lake.domains ADD COLUMN never_store text[] NOT NULL DEFAULT '{}';
CREATE FUNCTION lake.offered_rows(d lake.domains) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN format(
    'SELECT o.ord::int AS ord, %s, o.hash
     FROM ROWS FROM (jsonb_array_elements($1), unnest($2)) WITH ORDINALITY AS o(key, hash, ord)',
    (SELECT string_agg(format('(o.key ->> %s)::%s AS %I', n - 1, t, c), ', ' ORDER BY n)
     FROM unnest(d.key_columns, d.key_types) WITH ORDINALITY AS s(c, t, n)));
COMMENT ON COLUMN lake.domains.never_store IS
    'Field names never stored at any depth, compared without case; a trailing * matches a '
    'prefix (finAid*). The loader strips them; so does the raw trigger for rows written by hand.';
UPDATE lake.domains SET never_store = ARRAY['ssn', 'sexualOrientation', 'finAid*']
WHERE domain = 'person';

-- Never-store fields ---------------------------------------------------------------------------

CREATE FUNCTION lake.is_never_store(name text, patterns text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN EXISTS (
    SELECT FROM unnest(patterns) AS p
    WHERE CASE WHEN right(p, 1) = '*' THEN starts_with(lower(name), lower(left(p, -1)))
               ELSE lower(name) = lower(p) END);

-- The value without the never-store fields, at any depth.
CREATE FUNCTION lake.strip_fields(value jsonb, patterns text[]) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    CASE jsonb_typeof(value)
    WHEN 'object' THEN
        RETURN coalesce((SELECT jsonb_object_agg(k, lake.strip_fields(v, patterns))
                         FROM jsonb_each(value) AS e(k, v)
                         WHERE NOT lake.is_never_store(k, patterns)), '{}');
    WHEN 'array' THEN
        RETURN coalesce((SELECT jsonb_agg(lake.strip_fields(v, patterns) ORDER BY n)
                         FROM jsonb_array_elements(value) WITH ORDINALITY AS a(v, n)), '[]');
    ELSE
        RETURN value;
    END CASE;
END
$$;

-- Raw, whoever writes ----------------------------------------------------------------------------

-- BEFORE INSERT on raw for rows that come without a content hash (written by hand, or deletions
-- written by lake.finish_run). Compares with the key's latest raw row, which includes rows
-- inserted earlier by the same statement (PostgreSQL shows a row-level BEFORE trigger the rows
-- its statement already inserted), so duplicates within one INSERT add no version:
-- * a record: never-store fields are stripped, the content hash computed, and the row skipped
--   when it equals the latest version;
-- * a deletion: skipped when there is nothing live to delete.
CREATE OR REPLACE FUNCTION lake.raw_fill_hash() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    d lake.domains := lake.domain(TG_ARGV[0]);
    data_column text := d.domain || '_data';
    given jsonb;
    kept jsonb;
    hash uuid;
    was_deleted boolean;
    was_hash uuid;
BEGIN
    EXECUTE format(
        'SELECT r.deleted, r.content_hash FROM %1$I.%2$I AS r, (SELECT ($1).*) AS n
         WHERE %3$s ORDER BY r.raw_id DESC LIMIT 1',
        d.domain || '_raw', data_column, lake.key_match(d.key_columns, 'r', 'n'))
    INTO was_deleted, was_hash USING NEW;
    IF NEW.deleted THEN
        IF was_deleted IS DISTINCT FROM false THEN
            RETURN NULL;  -- never stored, or already deleted
        END IF;
        RETURN NEW;
    END IF;
    given := to_jsonb(NEW) -> data_column;
    kept := lake.strip_fields(given, d.never_store);
    IF kept IS DISTINCT FROM given THEN
        NEW := jsonb_populate_record(NEW, jsonb_build_object(data_column, kept));
    END IF;
    hash := lake.content_hash(kept);
    IF was_deleted = false AND was_hash = hash THEN
        RETURN NULL;
    END IF;
    NEW.content_hash := hash;
    RETURN NEW;
END
$$;

-- BEFORE UPDATE, DELETE or TRUNCATE on raw: refused. Raw is the history other teams audit.
CREATE FUNCTION lake.raw_refuse_rewrite() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('dataload.allow_raw_rewrite', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '%.% is insert-only history: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'prohibited_sql_statement_attempted',
              HINT = 'To correct history, insert a new version (or a row with deleted = true). '
                     'An administrator can allow a rewrite for one transaction with '
                     'SET LOCAL dataload.allow_raw_rewrite = on; xform and curated do not follow it.';
END
$$;

-- The propagation trigger, as in V0005, plus one case: a key whose statement holds a live row
-- and then its deletion. Its xform row takes that live version and is marked deleted (before,
-- a key new to the lake ended with history in raw and no row in xform).
CREATE OR REPLACE FUNCTION lake.raw_propagate() RETURNS trigger
LANGUAGE plpgsql AS $$
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
SET work_mem = '64MB'
SET jit = off;

-- What V0005's lake.install_domain creates, made safe: the seen table logged and able to hold a
-- listing, raw guarded against rewrites, the raw row trigger also for deletions.
CREATE FUNCTION lake.harden_domain(domain_name text) RETURNS void
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
    EXECUTE format('DROP TRIGGER IF EXISTS fill_content_hash ON %s', raw);
    EXECUTE format('CREATE TRIGGER fill_content_hash BEFORE INSERT ON %s FOR EACH ROW
                    WHEN (NEW.content_hash IS NULL) EXECUTE FUNCTION lake.raw_fill_hash(%L)',
                   raw, d.domain);
    EXECUTE format('DROP TRIGGER IF EXISTS insert_only ON %s', raw);
    EXECUTE format('CREATE TRIGGER insert_only BEFORE UPDATE OR DELETE ON %s
                    FOR EACH STATEMENT EXECUTE FUNCTION lake.raw_refuse_rewrite()', raw);
    EXECUTE format('DROP TRIGGER IF EXISTS no_truncate ON %s', raw);
    EXECUTE format('CREATE TRIGGER no_truncate BEFORE TRUNCATE ON %s
                    FOR EACH STATEMENT EXECUTE FUNCTION lake.raw_refuse_rewrite()', raw);
END
$$;

ALTER FUNCTION lake.install_domain(text, text[], text[], text[], regproc)
    RENAME TO install_domain_layers;

-- Create a domain: its layers (lake.install_domain_layers), its never-store fields, its guards.
CREATE FUNCTION lake.install_domain(
    domain_name text, key_columns text[], key_types text[], key_fields text[],
    on_change regproc DEFAULT NULL, never_store text[] DEFAULT '{}'
) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM lake.install_domain_layers(domain_name, key_columns, key_types, key_fields, on_change);
    UPDATE lake.domains SET never_store = install_domain.never_store WHERE domain = domain_name;
    PERFORM lake.harden_domain(domain_name);
END
$$;

SELECT lake.harden_domain(domain) FROM lake.domains ORDER BY domain;

-- One writer per domain --------------------------------------------------------------------------

CREATE FUNCTION lake.writer_lock_key(domain_name text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN hashtextextended('dataload writer ' || domain_name, 0);

-- Whether backend `pid` holds the writer lock of a domain (of this database).
CREATE FUNCTION lake.holds_writer_lock(domain_name text, pid integer) RETURNS boolean
LANGUAGE sql STABLE
RETURN EXISTS (
    SELECT FROM pg_locks AS l
    WHERE l.locktype = 'advisory' AND l.granted AND l.pid = holds_writer_lock.pid
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.objsubid = 1
      AND l.classid = ((lake.writer_lock_key(domain_name) >> 32) & 4294967295)::oid
      AND l.objid = (lake.writer_lock_key(domain_name) & 4294967295)::oid);

-- Start a run on the connection that will hold the domain's writer lock for the run's life.
-- Refused at once when another session holds it (the caller waits and asks again). Runs still
-- 'running' then have no writer left: their process died; they are marked abandoned and the
-- keys they saw cleared.
CREATE OR REPLACE FUNCTION lake.start_run(domain_name text, flow text, flow_run_id text)
RETURNS lake.runs
LANGUAGE plpgsql AS $$
DECLARE
    run lake.runs;
    busy lake.runs;
BEGIN
    PERFORM lake.domain(domain_name);
    IF NOT pg_try_advisory_lock(lake.writer_lock_key(domain_name)) THEN
        SELECT * INTO busy FROM lake.runs
        WHERE domain = domain_name AND status = 'running' ORDER BY run_id DESC LIMIT 1;
        RAISE EXCEPTION '% run % is loading (started %, flow run %): one writer per domain',
            domain_name, coalesce(busy.run_id::text, '?'),
            coalesce(to_char(busy.started, 'YYYY-MM-DD HH24:MI:SS TZ'), '?'),
            coalesce(busy.flow_run_id, 'none')
            USING ERRCODE = 'lock_not_available',
                  HINT = 'wait for it to end, or stop it; a run whose process died frees its lock';
    END IF;
    UPDATE lake.runs
    SET status = 'abandoned', finished = clock_timestamp(),
        outcome = lake.describe_outcome(runs, 'abandoned', 'its process died or lost its database session')
    WHERE domain = domain_name AND status = 'running';
    EXECUTE format('TRUNCATE lake.%I', domain_name || '_seen');
    INSERT INTO lake.runs (domain, flow, flow_run_id, writer_pid, server_started)
    VALUES (domain_name, flow, flow_run_id, pg_backend_pid(), pg_postmaster_start_time())
    RETURNING * INTO run;
    RETURN run;
END
$$;

-- The run, if it is running and its writer still holds the lock on this server incarnation.
CREATE FUNCTION lake.writing_run(run bigint) RETURNS lake.runs
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

-- Runs -----------------------------------------------------------------------------------------

-- "stored 3 new and 5 changed records, deleted nobody: <why>" for a run's counts.
CREATE FUNCTION lake.describe_outcome(r lake.runs, status text, why text, deleted bigint DEFAULT 0)
RETURNS text
LANGUAGE sql IMMUTABLE
RETURN format('stored %s new and %s changed records%s, %s',
              r.inserted, r.changed,
              CASE status WHEN 'failed' THEN ' before it failed'
                          WHEN 'abandoned' THEN ' before it stopped' ELSE '' END,
              CASE WHEN deleted > 0 THEN format('deleted %s', deleted)
                   ELSE 'deleted nobody' END)
       || CASE WHEN why IS NULL THEN '' ELSE ': ' || why END;

-- Declare keys of the run's complete listing (a JSON array of key arrays, in key-column order),
-- apart from the records it loads: a listed key the run never loads is missing, not deleted.
CREATE FUNCTION lake.list_keys(run bigint, keys jsonb) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    r lake.runs := lake.writing_run(run);
    d lake.domains := lake.domain(r.domain);
    n bigint;
BEGIN
    EXECUTE format('INSERT INTO lake.%I (run_id, listed, %s) SELECT $3, true, %s FROM (%s) AS o',
                   d.domain || '_seen', lake.key_list(d.key_columns),
                   lake.key_list(d.key_columns, 'o'), lake.offered_rows(d))
    USING keys, NULL::uuid[], run;
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE lake.runs SET listed = coalesce(listed, 0) + n WHERE run_id = run;
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION lake.record_batch(
    run bigint, offered bigint, inserted bigint, changed bigint, unchanged bigint,
    rejected bigint, rejects jsonb
) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM lake.writing_run(run);
    UPDATE lake.runs
    SET offered = runs.offered + record_batch.offered,
        inserted = runs.inserted + record_batch.inserted,
        changed = runs.changed + record_batch.changed,
        unchanged = runs.unchanged + record_batch.unchanged,
        rejected = runs.rejected + record_batch.rejected
    WHERE run_id = run;
    INSERT INTO lake.rejected (run_id, reason, sample)
    SELECT run, r ->> 'reason', r ->> 'sample' FROM jsonb_array_elements(rejects) AS r;
END
$$;

DROP FUNCTION lake.finish_run(bigint, boolean, jsonb);

-- End a run. Only a complete snapshot deletes, and only keys of its scope that it neither
-- loaded nor listed; a run that listed keys it never loaded ends partial and deletes nobody, and
-- one that would delete more than max_delete_share of the live keys of its scope ends guarded
-- and deletes nobody (NULL: no guard). `incomplete` says why a run is not a complete snapshot
-- (complete is false). The scope {"key_column": [values...]} limits deletions to the live keys
-- inside it: the course flow fetches the active terms only, so a course of another term is not
-- absent from the source, merely not asked for.
CREATE FUNCTION lake.finish_run(
    run bigint, complete boolean, scope jsonb DEFAULT NULL,
    max_delete_share numeric DEFAULT NULL, incomplete text DEFAULT NULL
) RETURNS lake.runs
LANGUAGE plpgsql AS $$
DECLARE
    r lake.runs := lake.writing_run(run);
    d lake.domains := lake.domain(r.domain);
    k text := lake.key_list(d.key_columns);
    seen text := d.domain || '_seen';
    xform text := format('%I.%I', d.domain || '_xform', 'current_' || d.domain || '_data');
    within text := '';
    unseen text;
    col text;
    lost bigint := 0;
    sample text[];
    live bigint;
    doomed bigint;
    removed bigint := 0;
    outcome_status text;
    why text;
BEGIN
    IF complete AND scope IS NOT NULL THEN
        IF jsonb_typeof(scope) <> 'object' THEN
            RAISE EXCEPTION 'a snapshot scope must be an object of key column -> values'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR col IN SELECT jsonb_object_keys(scope) LOOP
            IF NOT col = ANY (d.key_columns) OR jsonb_typeof(scope -> col) <> 'array' THEN
                RAISE EXCEPTION 'snapshot scope: "%" is not a key column of %, with a list of values',
                    col, d.domain
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = format('key columns: %s', array_to_string(d.key_columns, ', '));
            END IF;
            within := within || format(
                ' AND x.%1$I::text IN (SELECT jsonb_array_elements_text($2 -> %2$L))', col, col);
        END LOOP;
    END IF;
    IF r.listed IS NOT NULL THEN
        EXECUTE format($sql$
            SELECT count(*), (array_agg(concat_ws('/', %1$s) ORDER BY %1$s))[1:10]
            FROM (SELECT %1$s FROM lake.%2$I WHERE run_id = $1 AND listed
                  EXCEPT
                  SELECT %1$s FROM lake.%2$I WHERE run_id = $1 AND NOT listed) AS m
            $sql$, k, seen)
        INTO lost, sample USING run;
    END IF;
    -- Live keys of the scope the run neither loaded nor listed.
    unseen := format('FROM %1$s AS x WHERE x.deleted_at IS NULL %2$s
                      AND NOT EXISTS (SELECT FROM lake.%3$I AS s WHERE s.run_id = $1 AND %4$s)',
                     xform, within, seen, lake.key_match(d.key_columns, 's', 'x'));
    IF NOT complete THEN
        outcome_status := 'partial';
        why := coalesce(incomplete, 'the run did not see a complete listing');
    ELSIF lost > 0 THEN
        outcome_status := 'partial';
        why := format('%s listed keys were not loaded (%s%s)', lost,
                      array_to_string(sample, ', '), CASE WHEN lost > 10 THEN ', ...' ELSE '' END);
    ELSE
        EXECUTE format('SELECT count(*) FROM %s AS x WHERE x.deleted_at IS NULL %s', xform, within)
            INTO live USING run, scope;
        EXECUTE 'SELECT count(*) ' || unseen INTO doomed USING run, scope;
        IF max_delete_share IS NOT NULL AND doomed > max_delete_share * live THEN
            outcome_status := 'guarded';
            why := format('it would have deleted %s of %s live records (%s%%), more than the '
                          '%s%% guard; if they really left, run again allowing a mass deletion',
                          doomed, live, round(100.0 * doomed / live, 1),
                          round(100 * max_delete_share, 1));
        ELSE
            outcome_status := 'complete';
            EXECUTE format('INSERT INTO %1$I.%2$I (%3$s, %2$I, deleted, run_id)
                            SELECT %4$s, NULL, true, $1 %5$s ORDER BY %4$s',
                           d.domain || '_raw', d.domain || '_data', k,
                           lake.key_list(d.key_columns, 'x'), unseen)
                USING run, scope;
            GET DIAGNOSTICS removed = ROW_COUNT;
        END IF;
    END IF;
    EXECUTE format('DELETE FROM lake.%I WHERE run_id = $1', seen) USING run;
    UPDATE lake.runs
    SET status = outcome_status, finished = clock_timestamp(), deleted = removed,
        missing = lost, missing_sample = sample,
        outcome = lake.describe_outcome(r, outcome_status, why, removed)
    WHERE run_id = run
    RETURNING * INTO r;
    RETURN r;
END
$$;

CREATE OR REPLACE FUNCTION lake.fail_run(run bigint, reason text) RETURNS lake.runs
LANGUAGE plpgsql AS $$
DECLARE
    r lake.runs := lake.running_run(run);
BEGIN
    EXECUTE format('DELETE FROM lake.%I WHERE run_id = $1', r.domain || '_seen') USING run;
    UPDATE lake.runs
    SET status = 'failed', finished = clock_timestamp(), error = reason,
        outcome = lake.describe_outcome(r, 'failed', reason)
    WHERE run_id = run
    RETURNING * INTO r;
    RETURN r;
END
$$;
