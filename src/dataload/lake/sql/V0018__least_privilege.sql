-- Least privilege (DESIGN.md section 7): the lake's objects belong to an owner role, which
-- migrates; a loader role loads through the lake's functions and can do nothing else; consumers
-- read their services. The roles are named by settings (DATALOAD_OWNER_ROLE,
-- DATALOAD_LOADER_ROLE) and created by `dataload db init`; their names are kept here, for the
-- functions that grant the loader what a load creates (a facts version's table) and say who
-- may switch a protection off.
CREATE TABLE lake.roles (
    kind text PRIMARY KEY CHECK (kind IN ('owner', 'loader')),
    role_oid oid NOT NULL
);
COMMENT ON TABLE lake.roles IS
    'The lake''s owner and loader roles (by OID: a renamed role keeps its place). Written by '
    '`dataload db init` (lake.grant_loader).';
