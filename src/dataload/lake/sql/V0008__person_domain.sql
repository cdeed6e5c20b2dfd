-- People, keyed by their BUID (personid).

SELECT lake.install_domain('person', ARRAY['bu_uid'], ARRAY['text'], ARRAY['personid']);
