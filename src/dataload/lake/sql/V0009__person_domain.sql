-- People, keyed by their BUID (personid).

SELECT lake.install_domain('person', ARRAY['bu_uid'], ARRAY['text'], ARRAY['personid']);

-- Its walker, for the services it has so far (none); each change of its filters compiles it anew.
SELECT lake.compile_walker('person');
