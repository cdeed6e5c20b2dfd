-- What a document domain's live records held when a run's shape was tallied: the sum of their
-- content hashes (uuid_hash_extended, as numeric: no overflow). A later run whose live records
-- sum and count the same holds the same contents, so the same shapes (a content's shape never
-- changes): lake.observe_shape (R__shapes.sql) copies that tally instead of counting again,
-- which is what an unchanged reload finds. NULL: not a document domain, or tallied before.
ALTER TABLE lake.run_shapes ADD COLUMN live_hash numeric;
