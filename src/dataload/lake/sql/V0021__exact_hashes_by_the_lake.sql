-- The lake computes the exact hash of what raw stores, and takes no hash on a writer's word
-- where it decides: a row that claimed the hashes of another record (the version the source
-- will send next) made the lake take that version for unchanged, for good (issue 16).
--
-- Each document domain's raw table gets given_text: the record's text as the loader was given
-- it, never-store fields included. Raw's row trigger (compiled per domain by
-- lake.compile_raw_trigger, R__layers.sql) hashes it into exact_hash, parses it into the
-- record, strips that and empties the column: it is never stored. lake.remember_exact, which
-- set a current version's exact hash to whatever the loader said, is gone: the trigger
-- remembers the hash of a text it found unchanged.
--
-- Here raw's row trigger is pointed at lake.raw_fill_hash, for every row in every session mode
-- (a lake that was only migrated kept the trigger of V0012, which skipped rows that brought a
-- content hash). Once the repeatable scripts have run, that function refuses every row, until
-- lake/migrate.py compiles each domain's own trigger, right after them.
DO $$
DECLARE
    d record;
BEGIN
    FOR d IN SELECT format('%I.%I', m.domain || '_raw', m.domain || '_data') AS raw, m.domain
             FROM lake.domains AS m
             WHERE NOT EXISTS (SELECT FROM lake.tables AS t WHERE t.domain = m.domain) LOOP
        EXECUTE format('ALTER TABLE %s ADD COLUMN given_text text', d.raw);
        EXECUTE format('COMMENT ON COLUMN %s.given_text IS %L', d.raw,
                       'The text the loader was given: raw''s row trigger hashes it into '
                       'exact_hash, parses it, strips it and empties this column.');
        EXECUTE format('DROP TRIGGER fill_content_hash ON %s', d.raw);
        EXECUTE format('CREATE TRIGGER fill_content_hash BEFORE INSERT ON %s FOR EACH ROW
                        EXECUTE FUNCTION lake.raw_fill_hash(%L)', d.raw, d.domain);
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER fill_content_hash', d.raw);
    END LOOP;
END
$$;

DROP FUNCTION IF EXISTS lake.remember_exact(bigint, jsonb, uuid[]);
-- Stripping is lake.strip_matching now, given the patterns that raw's compiled trigger holds.
DROP FUNCTION lake.strip_fields(jsonb, text[]);
DROP FUNCTION lake.is_never_store(text, text[]);
