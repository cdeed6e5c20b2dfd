-- Repeatable script (lake/migrate.py): the one current definition of each function below,
-- re-applied whenever this file changes. To change a function, edit its body here; tables,
-- columns and data go in a new versioned migration (V####__what.sql).
--
-- Consumers of the curated layer: a PostgreSQL role per consuming service, which reads its own
-- service's rows of <d>_curated.<d>_data_by_service and nothing else of the lake, by
-- row-level security on the service column. lake.service_grants (V0013) is the bookkeeping;
-- the policies and privileges are derived from it by lake.apply_service_grants. The design
-- and its reasons are at the top of V0013__curated_consumers.sql.

-- A domain's curated table, and its filters table. These two and lake.curated_secured have
-- SQL-standard bodies (RETURN ...) of the lake.domains row type, which pins it: a versioned
-- migration that changes the columns of lake.domains drops them first and deletes the row
-- 'consumers' of lake.repeatable_scripts (and 'runs', for lake.offered_rows), so that the
-- scripts create them again.
CREATE OR REPLACE FUNCTION lake.curated_table(d lake.domains) RETURNS regclass
LANGUAGE sql STABLE
RETURN format('%I.%I', d.domain || '_curated', d.domain || '_data_by_service')::regclass;

CREATE OR REPLACE FUNCTION lake.filters_table(d lake.domains) RETURNS regclass
LANGUAGE sql STABLE
RETURN format('%I.%I', d.domain || '_curated', d.domain || '_schema_service_filters')::regclass;

-- The OID of a role, or an error naming it.
CREATE OR REPLACE FUNCTION lake.role_oid(role_name text) RETURNS oid
LANGUAGE plpgsql STABLE AS $$
DECLARE
    result oid := (SELECT oid FROM pg_roles WHERE rolname = role_name);
BEGIN
    IF result IS NULL THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name USING ERRCODE = 'undefined_object';
    END IF;
    RETURN result;
END
$$;

-- Forget the grants of roles that were dropped: DROP ROLE succeeds only once no policy or
-- privilege names the role (DROP OWNED BY removes them), so such a grant gives nothing.
CREATE OR REPLACE FUNCTION lake.forget_dropped_roles() RETURNS void
LANGUAGE sql AS $$
    DELETE FROM lake.service_grants AS g
    WHERE NOT EXISTS (SELECT FROM pg_roles AS r WHERE r.oid = g.role_oid)
$$;

-- Serialises changes to a domain's policies: SHARE ROW EXCLUSIVE conflicts with itself and
-- with writers, and is taken before a policy change asks for ACCESS EXCLUSIVE, so a grant, a
-- revoke and a services sync that removes a granted service take turns instead of deadlocking.
CREATE OR REPLACE FUNCTION lake.lock_curated(d lake.domains) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', lake.curated_table(d));
END
$$;

-- Make a role's policy and privileges on a domain's curated layer match lake.service_grants.
-- The caller holds the curated table's lock (see lake.lock_curated). The policy is found by
-- the role it applies to and named after the role's current name.
CREATE OR REPLACE FUNCTION lake.apply_service_grants(domain_name text, grantee oid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d        lake.domains := lake.domain(domain_name);
    curated  regclass := lake.curated_table(d);
    role     text := (SELECT rolname FROM pg_roles WHERE oid = grantee);
    policy   text := 'consumer ' || role;
    services text[] := ARRAY(SELECT g.service FROM lake.service_grants AS g
                             WHERE g.domain = d.domain AND g.role_oid = grantee
                             ORDER BY g.service);
    present  text := (SELECT polname FROM pg_policy
                      WHERE polrelid = curated AND polname LIKE 'consumer %'
                        AND polroles = ARRAY[grantee]);
BEGIN
    IF role IS NULL THEN
        RETURN;  -- dropped: nothing in the database names it any more
    END IF;
    IF present IS DISTINCT FROM policy AND present IS NOT NULL THEN
        EXECUTE format('ALTER POLICY %I ON %s RENAME TO %I', present, curated, policy);
    END IF;
    IF cardinality(services) = 0 THEN
        IF present IS NOT NULL THEN
            EXECUTE format('DROP POLICY %I ON %s', policy, curated);
        END IF;
        EXECUTE format('REVOKE SELECT ON %s FROM %I', curated, role);
        EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM %I', d.domain || '_curated', role);
        RETURN;
    END IF;
    IF present IS NOT NULL THEN
        EXECUTE format('ALTER POLICY %I ON %s USING (service = ANY (%L::text[]))',
                       policy, curated, services);
    ELSE
        EXECUTE format('CREATE POLICY %I ON %s AS PERMISSIVE FOR SELECT TO %I
                        USING (service = ANY (%L::text[]))', policy, curated, role, services);
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', d.domain || '_curated', role);
    EXECUTE format('GRANT SELECT ON %s TO %I', curated, role);
END
$$;

-- Let a role read one service of a domain. Returns false when it already could. The `full`
-- service (whole records) needs allow_full. Waits at most 10 s for the curated table (a
-- policy change needs it alone for an instant): a long query there makes it fail, not hang.
CREATE OR REPLACE FUNCTION lake.grant_service(
    domain_name text, service_name text, grantee text, allow_full boolean DEFAULT false
) RETURNS boolean
LANGUAGE plpgsql SET lock_timeout = '10s' AS $$
DECLARE
    d     lake.domains := lake.domain(domain_name);
    who   pg_roles;
    owner text;
    known boolean;
    added int;
BEGIN
    IF lake.is_tabular(domain_name) THEN  -- a service is a view of its own
        RETURN lake.grant_table_service(domain_name, service_name, grantee);
    END IF;
    owner := (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = lake.curated_table(d));
    SELECT * INTO who FROM pg_roles WHERE oid = lake.role_oid(grantee);
    IF who.rolsuper OR who.rolbypassrls THEN
        RAISE EXCEPTION 'role "%" bypasses row-level security (superuser or BYPASSRLS) and '
                        'would read every service', grantee
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'grant to an ordinary role made for the consuming service';
    END IF;
    IF pg_has_role(grantee, owner, 'MEMBER') THEN
        RAISE EXCEPTION 'role "%" can act as the lake''s owner "%" and reads every service '
                        'already', grantee, owner
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'grant to an ordinary role made for the consuming service';
    END IF;
    -- These predefined roles read (or write) every table, raw and xform included.
    IF pg_has_role(grantee, 'pg_read_all_data', 'MEMBER')
       OR pg_has_role(grantee, 'pg_write_all_data', 'MEMBER') THEN
        RAISE EXCEPTION 'role "%" is a member of pg_read_all_data or pg_write_all_data and '
                        'reaches raw and xform whatever its grants', grantee
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'grant to an ordinary role made for the consuming service';
    END IF;
    IF octet_length('consumer ' || grantee) > 63 THEN
        RAISE EXCEPTION 'role name "%" is too long for its policy name (at most 54 bytes)',
            grantee USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF service_name = 'full' AND NOT allow_full THEN
        RAISE EXCEPTION 'the full service holds whole % records; granting it must be explicit',
            d.domain USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A service of the filters table, `full`, or a built-in one with rows (active_terms).
    EXECUTE format('SELECT EXISTS (SELECT FROM %s WHERE service = $1)
                           OR EXISTS (SELECT FROM %s WHERE service = $1)',
                   lake.filters_table(d), lake.curated_table(d))
        INTO known USING service_name;
    IF NOT (known OR service_name = 'full') THEN
        RAISE EXCEPTION '% has no service "%"', d.domain, service_name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('services are in %s, plus full', lake.filters_table(d));
    END IF;

    PERFORM lake.lock_curated(d);
    PERFORM lake.forget_dropped_roles();
    INSERT INTO lake.service_grants (domain, service, role_oid)
    VALUES (d.domain, service_name, who.oid) ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    IF added > 0 THEN
        PERFORM lake.apply_service_grants(d.domain, who.oid);
    END IF;
    RETURN added > 0;
END
$$;

-- Stop a role reading one service of a domain; false when it had no such grant. Takes effect
-- for the role's next statement.
CREATE OR REPLACE FUNCTION lake.revoke_service(domain_name text, service_name text, grantee text)
RETURNS boolean
LANGUAGE plpgsql SET lock_timeout = '10s' AS $$
DECLARE
    d       lake.domains := lake.domain(domain_name);
    role    oid := lake.role_oid(grantee);
    removed int;
BEGIN
    IF lake.is_tabular(domain_name) THEN
        RETURN lake.revoke_table_service(domain_name, service_name, grantee);
    END IF;
    PERFORM lake.lock_curated(d);
    PERFORM lake.forget_dropped_roles();
    DELETE FROM lake.service_grants
    WHERE domain = d.domain AND service = service_name AND role_oid = role;
    GET DIAGNOSTICS removed = ROW_COUNT;
    IF removed > 0 THEN
        PERFORM lake.apply_service_grants(d.domain, role);
    END IF;
    RETURN removed > 0;
END
$$;

-- Create a consumer's login role. Takes a SCRAM-SHA-256 verifier, never a password: the
-- client hashes it, so the password reaches neither the server nor its logs.
CREATE OR REPLACE FUNCTION lake.create_consumer_role(grantee text, verifier text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF verifier !~ '^SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$' THEN
        RAISE EXCEPTION 'a consumer''s password must arrive as a SCRAM-SHA-256 verifier'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS '
                   'PASSWORD %L', grantee, verifier);
END
$$;

-- AFTER DELETE OR UPDATE on a filters table (TG_ARGV[0] = domain): a service that is gone
-- (removed, or renamed by hand) loses its grants.
CREATE OR REPLACE FUNCTION lake.filter_grants_dropped() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    d       lake.domains := lake.domain(TG_ARGV[0]);
    grantee oid;
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.service = NEW.service THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT FROM lake.service_grants
                   WHERE domain = d.domain AND service = OLD.service) THEN
        RETURN NULL;
    END IF;
    PERFORM lake.lock_curated(d);
    FOR grantee IN DELETE FROM lake.service_grants
                   WHERE domain = d.domain AND service = OLD.service RETURNING role_oid LOOP
        PERFORM lake.apply_service_grants(d.domain, grantee);
    END LOOP;
    RETURN NULL;
END
$$;

-- Whether a domain's curated tables are as lake.secure_curated leaves them.
CREATE OR REPLACE FUNCTION lake.curated_secured(d lake.domains) RETURNS boolean
LANGUAGE sql STABLE
RETURN (SELECT bool_and(c.relrowsecurity AND c.relforcerowsecurity AND EXISTS (
                SELECT FROM pg_policy AS p
                WHERE p.polrelid = c.oid AND p.polname = 'loader' AND p.polcmd = '*'
                  AND p.polroles = ARRAY[c.relowner]))
        FROM pg_class AS c WHERE c.oid IN (lake.curated_table(d), lake.filters_table(d)))
   AND EXISTS (SELECT FROM pg_trigger
               WHERE tgrelid = lake.filters_table(d) AND tgname = 'drop_grants');

-- Enable and force row-level security on a domain's curated tables, give their owner (the
-- loader) its policy, and drop the grants of services removed from the filters. Idempotent,
-- and touches nothing (takes no lock) when all is in place already: `dataload db init` calls
-- it for every domain before each run.
CREATE OR REPLACE FUNCTION lake.secure_curated(domain_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d     lake.domains := lake.domain(domain_name);
    t     regclass;
    owner text;
BEGIN
    -- A tabular domain's services are views, granted one by one: no row-level security.
    IF lake.is_tabular(domain_name) THEN
        RETURN;
    END IF;
    IF lake.curated_secured(d) THEN
        RETURN;
    END IF;
    PERFORM lake.lock_curated(d);
    FOREACH t IN ARRAY ARRAY[lake.curated_table(d), lake.filters_table(d)] LOOP
        owner := (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = t);
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', t);
        IF EXISTS (SELECT FROM pg_policy WHERE polrelid = t AND polname = 'loader') THEN
            EXECUTE format('DROP POLICY loader ON %s', t);  -- the owner changed since
        END IF;
        EXECUTE format('CREATE POLICY loader ON %s FOR ALL TO %I USING (true) WITH CHECK (true)',
                       t, owner);
    END LOOP;
    EXECUTE format($sql$
        CREATE OR REPLACE TRIGGER drop_grants AFTER DELETE OR UPDATE OF service ON %s
        FOR EACH ROW EXECUTE FUNCTION lake.filter_grants_dropped(%L)
        $sql$, lake.filters_table(d), d.domain);
END
$$;
