-- The shape of what each run loaded (DESIGN.md section 8, issue 18): for a document domain the
-- JSON paths its live records hold, their types and how many records hold each; for a tabular
-- domain the columns its source gave, their types and how many rows had a value. Drift is a
-- run's shape against the domain's last accepted one, named with the services it affects;
-- contracts make part of a shape a rule. The functions are in R__shapes.sql.
--
-- A path is a service filter's path with `[]` after a segment whose value is an array, its
-- elements' paths below it: /email (array), /email[] (object), /email[]/address (string).

-- Every distinct record shape: its (path, type) entries, sorted by their text "path<TAB>type";
-- the id is the md5 of those texts joined by newlines (lake/shape.py computes the same).
CREATE TABLE lake.shapes (
    shape uuid PRIMARY KEY,
    paths text[] NOT NULL,
    types text[] NOT NULL CHECK (cardinality(types) = cardinality(paths))
);

-- The shape of each stored content (by the canonical content hash the layers carry): a record
-- whose content is unchanged has its shape already, so a run only looks at new and changed ones.
CREATE TABLE lake.content_shapes (
    content_hash uuid PRIMARY KEY,
    shape        uuid NOT NULL
);

-- The shape each run observed. `accepted`: the run ended complete (or incremental), so its
-- shape is what the next runs are compared with (evolve: drift is reported once).
CREATE TABLE lake.run_shapes (
    run_id   bigint PRIMARY KEY REFERENCES lake.runs,
    domain   text NOT NULL,
    records  bigint NOT NULL DEFAULT 0,
    accepted boolean NOT NULL DEFAULT false
);
CREATE INDEX run_shapes_accepted ON lake.run_shapes (domain, run_id DESC) WHERE accepted;

CREATE TABLE lake.run_shape_paths (
    run_id  bigint NOT NULL REFERENCES lake.run_shapes ON DELETE CASCADE,
    path    text NOT NULL,
    type    text NOT NULL,
    records bigint NOT NULL,
    PRIMARY KEY (run_id, path, type)
);

-- A run's drift against the shape it was compared with (`against`, a run): paths that
-- appeared or vanished, types that changed; counts, a few keys (never values) and the services
-- whose paths it touches.
CREATE TABLE lake.shape_drift (
    run_id   bigint NOT NULL REFERENCES lake.run_shapes ON DELETE CASCADE,
    against  bigint NOT NULL,
    change   text NOT NULL CHECK (change IN ('appeared', 'vanished', 'type')),
    path     text NOT NULL,
    types    text[] NOT NULL,      -- the path's types now (vanished: the types it had)
    was      text[] NOT NULL,      -- its types in the accepted shape (appeared: none)
    records  bigint NOT NULL,      -- records holding it now (vanished: records that held it)
    of_records bigint NOT NULL,    -- records of the run
    sample   text[] NOT NULL DEFAULT '{}',  -- keys of a few records concerned
    services text[] NOT NULL DEFAULT '{}',  -- services it breaks (vanished, type)
    PRIMARY KEY (run_id, change, path)
);

-- Contracts: paths a domain (service '') or a service requires, or whose types it freezes, and
-- what a record that breaks the rule costs, in dlt's words: freeze (the run fails, its batch
-- is rolled back), discard_row (the record is rejected with its reason), discard_value (the
-- value is dropped, the rest of the record stored). Without a contract a shape evolves.
-- A service's contract with path '' covers every path of the service's filter.
CREATE TABLE lake.shape_contracts (
    domain   text NOT NULL REFERENCES lake.domains ON DELETE CASCADE,
    service  text NOT NULL DEFAULT '',
    path     text NOT NULL DEFAULT '',
    rule     text NOT NULL CHECK (rule IN ('required', 'frozen')),
    on_break text NOT NULL DEFAULT 'discard_row'
        CHECK (on_break IN ('freeze', 'discard_row', 'discard_value')),
    PRIMARY KEY (domain, service, path, rule),
    CHECK (path = '' OR left(path, 1) = '/'),
    CHECK (service <> '' OR path <> '')
);
